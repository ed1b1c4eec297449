// Command wggo-upstream is the baseline of bench/throughput.sh: upstream
// wireguard-go, at the module version wgnet embeds (go.mod), driven the way its
// own README shows and nothing more: tun.CreateTUN, device.NewDevice on
// conn.NewDefaultBind, IpcSet with a UAPI configuration, then the address and
// link-up with ip(8). wgnet's userspace backend is measured against it, so it must
// not share any of wgnet's code.
//
//	wggo-upstream -name wg0 -addr 10.0.0.1/24 -uapi wg0.uapi [-mtu 1420] [-ready FILE] [-cpuprofile FILE]
//
// The UAPI file is the set=1 body of the cross-platform interface
// (https://www.wireguard.com/xplatform/): private_key=HEX, listen_port=N,
// public_key=HEX, endpoint=IP:PORT, allowed_ip=PREFIX, one per line. It runs in
// the foreground until SIGTERM or SIGINT; -ready names a file it creates once the
// link is up.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

func main() {
	name := flag.String("name", "wg0", "interface name")
	mtu := flag.Int("mtu", 1420, "MTU of the TUN interface")
	addr := flag.String("addr", "", "address/prefix for the interface (ip addr add)")
	uapi := flag.String("uapi", "", "file with the UAPI set=1 configuration")
	ready := flag.String("ready", "", "file to create once the link is up")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until stopped")
	flag.Parse()
	if err := run(*name, *mtu, *addr, *uapi, *ready, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "wggo-upstream:", err)
		os.Exit(1)
	}
}

func run(name string, mtu int, addr, uapiFile, ready, cpuprofile string) error {
	conf, err := os.ReadFile(uapiFile)
	if err != nil {
		return err
	}
	tdev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return fmt.Errorf("create tun: %w", err)
	}
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "("+name+") "))
	defer dev.Close()
	if err := dev.IpcSet(string(conf)); err != nil {
		return fmt.Errorf("ipc set: %w", err)
	}
	if addr != "" {
		if out, err := exec.Command("ip", "address", "add", addr, "dev", name).CombinedOutput(); err != nil {
			return fmt.Errorf("ip address add: %v: %s", err, out)
		}
	}
	if out, err := exec.Command("ip", "link", "set", name, "mtu", strconv.Itoa(mtu), "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set up: %v: %s", err, out)
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if ready != "" {
		if err := os.WriteFile(ready, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
			return err
		}
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	select {
	case <-term:
	case <-dev.Wait():
	}
	return nil
}
