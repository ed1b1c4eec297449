// Command wgnet builds and runs WireGuard networks from one declarative spec.
//
// This package is thin: flags, wiring and signals. Each subcommand lives in its own
// file as newXCmd() plus a runX(ctx, ...) error, registered with register in an
// init function, so files can be added without touching this one.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes, the same for every command.
const (
	exitOK       = 0 // done and clean
	exitProblems = 1 // did its job and found a problem
	exitCantRun  = 2 // could not run: usage, I/O
)

// problemError marks "the command ran and found problems": exit 1. The findings
// themselves have already been printed; msg is a one-line summary for stderr.
type problemError struct{ msg string }

func (e *problemError) Error() string { return e.msg }

// errProblems returns an error that makes wgnet exit 1.
func errProblems(format string, a ...any) error {
	return &problemError{msg: fmt.Sprintf(format, a...)}
}

var commands []func() *cobra.Command

// register adds a subcommand constructor; call it from an init function.
func register(f func() *cobra.Command) { commands = append(commands, f) }

// globalFlags are shared by every subcommand.
type globalFlags struct {
	specFile string // -f, --file
	output   string // -o, --output: text | json (some commands accept more)
}

var global globalFlags

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "wgnet",
		Short:         "Build and run WireGuard networks from one declarative spec",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&global.specFile, "file", "f", "wgnet.yaml", "spec file")
	root.PersistentFlags().StringVarP(&global.output, "output", "o", "text", "output format: text|json")
	var subs []*cobra.Command
	for _, f := range commands {
		subs = append(subs, f())
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
	wireRemote(subs) // --controller/--network on the verbs that act on a controller's network too
	root.AddCommand(subs...)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err}
	})
	return root
}

// usageError marks bad command-line usage (exit 2).
type usageError struct{ error }

// outputFormat checks output, the value of -o, against the formats a command accepts
// (the first is the default meaning of "text").
func outputFormat(output string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if output == a {
			return a, nil
		}
	}
	return "", usageError{fmt.Errorf("-o %q: want one of %v", output, allowed)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	stop()
	os.Exit(exitCodeFor(err))
}

func exitCodeFor(err error) int {
	if err == nil {
		return exitOK
	}
	var p *problemError
	if errors.As(err, &p) {
		if p.msg != "" {
			fmt.Fprintln(os.Stderr, "wgnet:", p.msg)
		}
		return exitProblems
	}
	fmt.Fprintln(os.Stderr, "wgnet:", err)
	return exitCantRun
}
