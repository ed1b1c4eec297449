package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/up"
)

func init() {
	register(newConfirmCmd)
	register(newTimerCmd)
}

func newConfirmCmd() *cobra.Command {
	var rollback bool
	c := &cobra.Command{
		Use:   "confirm NAME [--rollback]",
		Short: "Keep a change made with --confirm (or undo it now with --rollback)",
		Long: "`wgnet up --confirm D` and `wgnet sync --confirm D` undo their change by themselves\n" +
			"after D (a detached timer, which survives the SSH session the change may cut)\n" +
			"unless `wgnet confirm NAME` runs first. --rollback undoes the change now.\n" +
			"With nothing waiting: exit 0 when the last change with --confirm changed nothing\n" +
			"(\"nothing to confirm\"), exit 1 with \"rolled back at T\" when it was rolled back,\n" +
			"exit 1 when nothing is known.",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runConfirm(c.Context(), c.ErrOrStderr(), args[0], rollback)
		},
	}
	c.Flags().BoolVar(&rollback, "rollback", false, "undo the change now instead of keeping it")
	return c
}

func runConfirm(ctx context.Context, stderr io.Writer, name string, rollback bool) error {
	if !up.ValidName(name) {
		return usageError{fmt.Errorf("%q: not an interface name", name)}
	}
	opts := up.SyncOptions{Options: up.Options{StateDir: stateDir(), Log: stderr}}
	var p *up.Pending
	var err error
	if rollback {
		p, err = up.Rollback(ctx, name, opts)
	} else {
		p, err = up.ConfirmChange(name, opts)
	}
	if errors.Is(err, up.ErrNoPending) {
		return nothingPending(stderr, opts.StateDir, name, rollback)
	}
	if err != nil {
		return err
	}
	if rollback {
		_, err = fmt.Fprintf(stderr, "wgnet: %s: the change by `wgnet %s` is undone\n", name, p.Command)
	} else {
		_, err = fmt.Fprintf(stderr, "wgnet: %s: the change by `wgnet %s` is kept\n", name, p.Command)
	}
	return err
}

// nothingPending is confirm's answer when no change waits: exit 0 when the last
// change with --confirm changed nothing (a fleet script that always confirms
// goes on), exit 1 with the time when it was rolled back (for --rollback that is
// done already: exit 0), exit 1 when nothing is known.
func nothingPending(stderr io.Writer, dir, name string, rollback bool) error {
	o, err := up.LastOutcome(dir, name)
	switch {
	case err == nil && o.Kind == up.OutcomeNoChange:
		_, err = fmt.Fprintf(stderr, "wgnet: %s: nothing to confirm: `wgnet %s` at %s changed nothing\n", name, o.Command, o.At.Local().Format(time.DateTime))
		return err
	case err == nil && o.Kind == up.OutcomeRolledBack && rollback:
		_, err = fmt.Fprintf(stderr, "wgnet: %s: the change by `wgnet %s` was rolled back at %s already\n", name, o.Command, o.At.Local().Format(time.DateTime))
		return err
	case err == nil && o.Kind == up.OutcomeRolledBack:
		return errProblems("%s: the change by `wgnet %s` was rolled back at %s (see %s)", name, o.Command, o.At.Local().Format(time.DateTime), up.TimerLog(dir, name))
	}
	return errProblems("%s: no change is waiting for confirmation (if there was one, it was confirmed or rolled back: see %s)", name, up.TimerLog(dir, name))
}

// newTimerCmd is the hidden process that rolls a change back unless it is
// confirmed, started by up/sync --confirm in a session of its own.
func newTimerCmd() *cobra.Command {
	var dir, id string
	c := &cobra.Command{
		Use:    up.TimerCommand + " --state-dir DIR --id ID NAME",
		Short:  "Roll a change back at its deadline unless confirmed (started by --confirm)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			// No terminal to lose, but a hang-up sent to the old session must not
			// stop the one thing that can undo a change that cut it off.
			signal.Ignore(syscall.SIGHUP)
			opts := up.SyncOptions{Options: up.Options{StateDir: dir, Log: stampWriter{os.Stderr}}}
			return up.RunTimer(c.Context(), args[0], id, opts)
		},
	}
	c.Flags().StringVar(&dir, "state-dir", up.DefaultStateDir, "state directory")
	c.Flags().StringVar(&id, "id", "", "the pending change this timer belongs to")
	return c
}

// stampWriter prefixes each write (one log line) with the time, for the timer's
// log file.
type stampWriter struct{ w io.Writer }

func (s stampWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(s.w, time.Now().Format(time.RFC3339)+" "); err != nil {
		return 0, err
	}
	return s.w.Write(b)
}
