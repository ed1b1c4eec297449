package device

import (
	"context"
	"fmt"
	"log/slog"

	"golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// EmbeddedOptions configure NewEmbedded. The zero value reports the device as
// BackendUserspace and discards wireguard-go's log.
type EmbeddedOptions struct {
	// Backend is what State.Backend reports; "" means BackendUserspace.
	Backend string
	// Logger receives wireguard-go's messages (errors at error level, the rest
	// at debug level); nil discards them.
	Logger *slog.Logger
}

// Embedded is upstream wireguard-go running in this process on whatever tun.Device
// and conn.Bind the caller hands it: a kernel TUN and UDP sockets (Userspace), or
// an in-process network stack and loopback sockets (package lab). It is the one
// place wgnet drives wireguard-go's device directly: Configure and State go
// through its in-process UAPI handler (IpcSet, IpcGet), so every embedding speaks
// the same protocol as `wg` does to a daemon's socket.
type Embedded struct {
	name    string
	backend string
	dev     *wgdevice.Device
}

// NewEmbedded starts wireguard-go on tdev and bind and returns it unconfigured.
// The device comes up when tdev reports tun.EventUp (a kernel TUN does when its
// link goes up) or when Up is called. The device owns tdev and bind from now on:
// Close closes both.
func NewEmbedded(name string, tdev tun.Device, bind conn.Bind, opts EmbeddedOptions) *Embedded {
	backend := opts.Backend
	if backend == "" {
		backend = BackendUserspace
	}
	return &Embedded{
		name:    name,
		backend: backend,
		dev:     wgdevice.NewDevice(tdev, bind, wgLogger(opts.Logger)),
	}
}

// wgLogger adapts l for wireguard-go. Its verbose messages are discarded
// outright when l does not log debug messages, as wireguard-go's own logger
// does below LogLevelVerbose: no Sprintf for a message nobody reads, on paths
// wireguard-go takes per packet when something goes wrong (a failed send).
func wgLogger(l *slog.Logger) *wgdevice.Logger {
	if l == nil {
		return &wgdevice.Logger{Verbosef: wgdevice.DiscardLogf, Errorf: wgdevice.DiscardLogf}
	}
	verbose := wgdevice.DiscardLogf
	if l.Enabled(context.Background(), slog.LevelDebug) {
		verbose = func(format string, args ...any) { l.Debug(fmt.Sprintf(format, args...)) }
	}
	return &wgdevice.Logger{
		Verbosef: verbose,
		Errorf:   func(format string, args ...any) { l.Error(fmt.Sprintf(format, args...)) },
	}
}

// Name returns the interface name.
func (e *Embedded) Name() string { return e.name }

// Up brings the device up: it opens the bind, on the configured listen port (a
// random one when none is set), and starts sending.
func (e *Embedded) Up() error {
	if err := e.dev.Up(); err != nil {
		return fmt.Errorf("up %s: %w", e.name, err)
	}
	return nil
}

// Configure applies c through wireguard-go's UAPI handler. A patch that checkConfig
// refuses changes nothing; otherwise wireguard-go applies it line by line.
func (e *Embedded) Configure(c Config) error {
	if err := checkConfig(c); err != nil {
		return fmt.Errorf("configure %s: %w", e.name, err)
	}
	if err := e.dev.IpcSet(encodeUAPI(c)); err != nil {
		return fmt.Errorf("configure %s: %w", e.name, err)
	}
	return nil
}

// RemovesAllowedIPs is true: upstream wireguard-go removes single allowed IPs.
func (e *Embedded) RemovesAllowedIPs() bool { return true }

// State reads the device's configuration and counters.
func (e *Embedded) State() (*State, error) {
	s, err := e.dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", e.name, err)
	}
	st, err := decodeUAPI(s)
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", e.name, err)
	}
	st.Name, st.Backend = e.name, e.backend
	return st, nil
}

// Wait is closed when the device stops: Close was called, or the TUN device went
// away (for a kernel TUN, `ip link del`).
func (e *Embedded) Wait() <-chan struct{} { return e.dev.Wait() }

// Close stops the device and closes its TUN device and bind. wireguard-go's
// workers exit right after it returns. Closing twice is harmless.
func (e *Embedded) Close() error {
	e.dev.Close()
	return nil
}

var _ AllowedIPRemover = (*Embedded)(nil)
var _ Device = (*Embedded)(nil)
