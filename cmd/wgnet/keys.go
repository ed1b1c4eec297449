package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func init() {
	register(newGenkeyCmd)
	register(newPubkeyCmd)
	register(newGenpskCmd)
}

// The key commands print exactly what wg genkey/pubkey/genpsk print: the user asked
// for the key, so it goes to stdout and nowhere else.

func newGenkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "genkey",
		Short: "Print a new private key (like wg genkey)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if _, err := outputFormat(global.output, "text"); err != nil {
				return err
			}
			warnTerminal(c.OutOrStdout())
			k, err := wgkey.GeneratePrivate()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.OutOrStdout(), k.Base64())
			return err
		},
	}
}

func newGenpskCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "genpsk",
		Short: "Print a new preshared key (like wg genpsk)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if _, err := outputFormat(global.output, "text"); err != nil {
				return err
			}
			warnTerminal(c.OutOrStdout())
			k, err := wgkey.GeneratePSK()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.OutOrStdout(), k.String())
			return err
		},
	}
}

func newPubkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pubkey",
		Short: "Read a private key on stdin, print its public key (like wg pubkey)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if _, err := outputFormat(global.output, "text"); err != nil {
				return err
			}
			line, err := bufio.NewReader(io.LimitReader(c.InOrStdin(), 1024)).ReadString('\n')
			if err != nil && err != io.EOF {
				return fmt.Errorf("read private key from stdin: %w", err)
			}
			k, err := wgkey.ParsePrivate(strings.TrimSpace(line))
			if err != nil {
				return usageError{fmt.Errorf("stdin: %w", err)}
			}
			_, err = fmt.Fprintln(c.OutOrStdout(), k.Public())
			return err
		},
	}
}

// warnTerminal warns, like wg does, when a secret is about to land on a terminal.
func warnTerminal(w io.Writer) {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(os.Stderr, "wgnet: writing a secret key to a terminal")
		}
	}
}
