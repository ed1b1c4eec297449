package device

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
)

// DefaultMTU is the MTU of a new userspace interface when none is given: a 1500-byte
// underlay minus 80 bytes of WireGuard over IPv6.
const DefaultMTU = 1420

// UserspaceOptions configure NewUserspace. The zero value is a device with the
// default MTU, no UAPI socket, and no logging.
type UserspaceOptions struct {
	// MTU of the TUN interface; 0 means DefaultMTU.
	MTU int
	// UAPI serves the standard control socket /var/run/wireguard/NAME.sock, so that
	// wg(8) and wgctrl can read and change the device. The socket directory is shared
	// by every network namespace: names must be unique across them.
	UAPI bool
	// Logger receives wireguard-go's messages; nil discards them.
	Logger *slog.Logger
}

// Userspace is upstream wireguard-go running in this process on a TUN device.
// TUN offloads (GSO/GRO through virtio-net headers) are enabled by tun.CreateTUN
// whenever the kernel supports them.
type Userspace struct {
	name string
	dev  *wgdevice.Device
	uapi net.Listener // nil without UAPI

	wg        sync.WaitGroup // the UAPI accept loop and its handlers
	closeOnce sync.Once
	closeErr  error
}

// NewUserspace creates the TUN interface name in the current network namespace and
// starts wireguard-go on it. The interface is down and has no configuration.
func NewUserspace(name string, opts UserspaceOptions) (_ *Userspace, err error) {
	mtu := opts.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	u := &Userspace{name: name}
	var uapi net.Listener
	if opts.UAPI {
		f, err := ipc.UAPIOpen(name)
		if err != nil {
			return nil, fmt.Errorf("userspace %s: uapi socket: %w", name, err)
		}
		defer f.Close() // UAPIListen dups it
		uapi, err = ipc.UAPIListen(name, f)
		if err != nil {
			return nil, fmt.Errorf("userspace %s: uapi listen: %w", name, err)
		}
		defer func() {
			if err != nil {
				uapi.Close()
			}
		}()
	}
	tdev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("userspace %s: create tun: %w", name, err)
	}
	if real, err := tdev.Name(); err == nil && real != name {
		tdev.Close()
		return nil, fmt.Errorf("userspace %s: kernel named the tun %q", name, real)
	}
	u.dev = wgdevice.NewDevice(tdev, conn.NewDefaultBind(), wgLogger(opts.Logger, name))
	if uapi != nil {
		u.uapi = uapi
		u.wg.Add(1)
		go u.serveUAPI()
	}
	return u, nil
}

func wgLogger(l *slog.Logger, name string) *wgdevice.Logger {
	if l == nil {
		return &wgdevice.Logger{Verbosef: wgdevice.DiscardLogf, Errorf: wgdevice.DiscardLogf}
	}
	l = l.With("interface", name)
	return &wgdevice.Logger{
		Verbosef: func(format string, args ...any) { l.Debug(fmt.Sprintf(format, args...)) },
		Errorf:   func(format string, args ...any) { l.Error(fmt.Sprintf(format, args...)) },
	}
}

// serveUAPI hands each control connection to the device until the listener closes.
func (u *Userspace) serveUAPI() {
	defer u.wg.Done()
	for {
		c, err := u.uapi.Accept()
		if err != nil {
			return
		}
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			u.dev.IpcHandle(c) // closes c
		}()
	}
}

// Name returns the interface name.
func (u *Userspace) Name() string { return u.name }

// Configure applies c through wireguard-go's UAPI handler.
func (u *Userspace) Configure(c Config) error {
	if err := checkConfig(c); err != nil {
		return fmt.Errorf("configure %s: %w", u.name, err)
	}
	if err := u.dev.IpcSet(encodeUAPI(c)); err != nil {
		return fmt.Errorf("configure %s: %w", u.name, err)
	}
	return nil
}

// RemovesAllowedIPs is true: upstream wireguard-go removes single allowed IPs.
func (u *Userspace) RemovesAllowedIPs() bool { return true }

// State reads the device's configuration and counters.
func (u *Userspace) State() (*State, error) {
	s, err := u.dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", u.name, err)
	}
	st, err := decodeUAPI(s)
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", u.name, err)
	}
	st.Name, st.Backend = u.name, BackendUserspace
	return st, nil
}

// Wait is closed when the device stops: Close was called or the TUN interface went
// away (`ip link del`).
func (u *Userspace) Wait() <-chan struct{} { return u.dev.Wait() }

// Close stops the UAPI socket and the device; the kernel removes the TUN interface.
func (u *Userspace) Close() error {
	u.closeOnce.Do(func() {
		if u.uapi != nil {
			if err := u.uapi.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				u.closeErr = fmt.Errorf("close %s: uapi: %w", u.name, err)
			}
		}
		u.dev.Close()
		u.wg.Wait()
	})
	return u.closeErr
}
