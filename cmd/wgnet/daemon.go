package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/device"
)

func init() { register(newUserspaceCmd) }

// newUserspaceCmd is the hidden background process behind a userspace interface,
// started by `wgnet up` (device.Spawn, through spawn.Start), stopped by `wgnet down`
// with SIGTERM (device.Stop).
func newUserspaceCmd() *cobra.Command {
	var opts device.DaemonOptions
	c := &cobra.Command{
		Use:    device.DaemonCommand + " [--mtu N] [--pid-file FILE] NAME",
		Short:  "Run upstream wireguard-go for interface NAME (started by wgnet up)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			// device.Spawn keeps the daemon in the session of the `up` that
			// started it: closing that terminal must not stop the interface.
			signal.Ignore(syscall.SIGHUP)
			opts.Name = args[0]
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
			return device.RunDaemon(c.Context(), opts)
		},
	}
	c.Flags().IntVar(&opts.MTU, "mtu", 0, "MTU of the TUN interface (0: 1420)")
	c.Flags().StringVar(&opts.PIDFile, "pid-file", "", "write the PID here once ready; removed on exit")
	return c
}
