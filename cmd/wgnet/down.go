package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/up"
)

func init() { register(newDownCmd) }

func newDownCmd() *cobra.Command {
	var host bool
	c := &cobra.Command{
		Use:   "down NAME|CONFIG | down --spec",
		Short: "Take down an interface that wgnet up brought up, restoring what it changed",
		Long: "down runs the PreDown hooks, removes exactly what up added (firewall table,\n" +
			"routes, addresses, the interface and its userspace daemon), restores the sysctls\n" +
			"up changed to their old values, and runs the PostDown hooks. It reads what to\n" +
			"undo from up's state file, not from the config, so an edited config can't confuse it.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runDown(c.Context(), c.ErrOrStderr(), args, host, global.specFile)
		},
	}
	c.Flags().BoolVar(&host, "spec", false, "take down the spec's interface (-f)")
	return c
}

func runDown(ctx context.Context, stderr io.Writer, args []string, fromSpec bool, specFile string) error {
	var name string
	switch {
	case fromSpec && len(args) == 0:
		s, err := spec.Load(specFile)
		if err != nil {
			return err
		}
		name = s.InterfaceName()
	case !fromSpec && len(args) == 1:
		n, _, err := resolveConfigArg(args[0])
		if err != nil {
			return err
		}
		name = n
	default:
		return usageError{fmt.Errorf("down needs NAME, CONFIG or --spec")}
	}
	if err := up.Down(ctx, name, up.Options{StateDir: stateDir(), Log: stderr}); err != nil {
		return advise(err)
	}
	_, err := fmt.Fprintf(stderr, "wgnet: %s is down\n", name)
	return err
}
