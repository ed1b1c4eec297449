// Command ctlprof is `wgnet controller` (SQLite, its own CA) with a CPU
// profile written when it stops, for BenchmarkAgentsFollow's controller
// process: WGNET_BENCH_CONTROLLER_PKG=github.com/wgnet/wgnet/bench/ctlprof
// and WGNET_CPUPROFILE=FILE. It takes the arguments the benchmark gives
// (controller --listen ADDR --data DIR) and nothing else.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"

	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ctlprof:", err)
		os.Exit(2)
	}
}

func run() error {
	if len(os.Args) < 2 || os.Args[1] != "controller" {
		return fmt.Errorf("usage: ctlprof controller --listen ADDR --data DIR")
	}
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	data := fs.String("data", "", "data directory")
	if err := fs.Parse(os.Args[2:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	st, err := sqlitestore.Open(ctx, filepath.Join(*data, "wgnet.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if path := os.Getenv("WGNET_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return controller.Run(ctx, st, controller.Options{Listen: *listen, DataDir: *data})
}
