package device

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/wgnet/wgnet/internal/wgkey"
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

// Userspace is upstream wireguard-go running in this process on a TUN device: an
// Embedded device on a kernel TUN and wireguard-go's own UDP sockets, optionally
// with the UAPI socket. TUN offloads (GSO/GRO through virtio-net headers) are
// enabled by tun.CreateTUN whenever the kernel supports them.
type Userspace struct {
	*Embedded
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
	log := opts.Logger
	if log != nil {
		log = log.With("interface", name)
	}
	u := &Userspace{Embedded: NewEmbedded(name, tdev, conn.NewDefaultBind(), EmbeddedOptions{Logger: log})}
	if uapi != nil {
		u.uapi = uapi
		u.wg.Add(1)
		go u.serveUAPI()
	}
	return u, nil
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
			u.serve(c) // closes c
		}()
	}
}

// Close stops the UAPI socket and the device; the kernel removes the TUN interface.
func (u *Userspace) Close() error {
	u.closeOnce.Do(func() {
		if u.uapi != nil {
			if err := u.uapi.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				u.closeErr = fmt.Errorf("close %s: uapi: %w", u.name, err)
			}
		}
		u.Embedded.Close()
		u.wg.Wait()
	})
	return u.closeErr
}

// serve answers one UAPI connection: stateOp itself, everything else (get,
// set, and what wireguard-go refuses) by wireguard-go's handler, which gets
// the connection with the bytes read here put back in front.
func (u *Userspace) serve(c net.Conn) {
	br := bufio.NewReader(c)
	op, err := br.ReadString('\n')
	if err != nil {
		c.Close()
		return
	}
	if op != stateOp {
		u.dev.IpcHandle(&replayConn{Conn: c, r: io.MultiReader(strings.NewReader(op), br)}) // closes c
		return
	}
	defer c.Close()
	keys := []wgkey.Key{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break
		}
		if line == "peers=all" {
			keys = nil
			continue
		}
		v, ok := strings.CutPrefix(line, "public_key=")
		k, kerr := hexKey(v)
		if !ok || kerr != nil || keys == nil {
			_, _ = io.WriteString(c, "errno=-22\n\n") // EINVAL, as wireguard-go answers a bad set
			return
		}
		keys = append(keys, k)
	}
	bp := stateBufs.Get().(*[]byte)
	b := append((*bp)[:0], stateMagic+"\x00\x00\x00\x00"...)
	err = directRead(u.dev, keys, func(st *State, peers int) {
		b = appendHead(b, st, peers)
	}, func(ps *PeerState) {
		b = appendPeer(b, ps)
	})
	if err != nil {
		_, _ = io.WriteString(c, "errno=-95\n\n") // EOPNOTSUPP: read with a get
		return
	}
	binary.LittleEndian.PutUint32(b[len(stateMagic):], uint32(len(b)-len(stateMagic)-4))
	_, _ = c.Write(b)
	if cap(b) <= 16<<20 {
		*bp = b
		stateBufs.Put(bp)
	}
}

// stateBufs keeps stateOp's answers' buffers (a megabyte for 10,000 peers)
// from one read to the next.
var stateBufs = sync.Pool{New: func() any { return new([]byte) }}

// replayConn is a connection whose first bytes were already read: Read gives
// them again, then the rest.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }
