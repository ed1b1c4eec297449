package controller

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProxyHeaderTimeout bounds how long a connection may take to send its PROXY
// protocol header.
const ProxyHeaderTimeout = 10 * time.Second

// proxySig is the signature that starts a PROXY protocol version 2 header.
var proxySig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// ProxyListener wraps l for a controller behind a TCP load balancer that
// sends the PROXY protocol (version 1 or 2, HAProxy's send-proxy or
// send-proxy-v2): every connection must start with the header, and its
// source address becomes the connection's RemoteAddr (what enrollment with
// endpoint_port records). A connection without a valid header fails. The
// header is read in the connection's own goroutine (at its first Read or
// RemoteAddr), never in Accept.
func ProxyListener(l net.Listener) net.Listener { return proxyListener{l} }

type proxyListener struct{ net.Listener }

func (l proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &proxyConn{Conn: c}, nil
}

type proxyConn struct {
	net.Conn
	once   sync.Once
	remote net.Addr
	err    error
}

func (c *proxyConn) header() {
	c.once.Do(func() {
		c.Conn.SetReadDeadline(time.Now().Add(ProxyHeaderTimeout))
		c.remote, c.err = readProxyHeader(c.Conn, c.Conn.RemoteAddr())
		c.Conn.SetReadDeadline(time.Time{})
		if c.err != nil {
			c.err = fmt.Errorf("PROXY protocol header from %s: %w", c.Conn.RemoteAddr(), c.err)
		}
	})
}

func (c *proxyConn) Read(b []byte) (int, error) {
	if c.header(); c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

func (c *proxyConn) RemoteAddr() net.Addr {
	if c.header(); c.err != nil || c.remote == nil {
		return c.Conn.RemoteAddr()
	}
	return c.remote
}

// readProxyHeader reads exactly one header from r (nothing beyond it) and
// returns the client's address; a LOCAL (v2) or UNKNOWN (v1) header, which a
// balancer sends for its own health checks, keeps the connection's own.
func readProxyHeader(r io.Reader, own net.Addr) (net.Addr, error) {
	first := make([]byte, 1)
	if _, err := io.ReadFull(r, first); err != nil {
		return nil, err
	}
	switch first[0] {
	case 'P':
		return readProxyV1(r, own)
	case '\r':
		return readProxyV2(r, own)
	}
	return nil, errors.New("no PROXY protocol header (is the balancer sending it? without a balancer, drop --proxy-protocol)")
}

func readProxyV1(r io.Reader, own net.Addr) (net.Addr, error) {
	line := []byte{'P'}
	b := make([]byte, 1)
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if len(line) >= 107 {
			return nil, errors.New("version 1 header longer than 107 bytes")
		}
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		line = append(line, b[0])
	}
	f := strings.Fields(string(line))
	if len(f) >= 2 && f[0] == "PROXY" && f[1] == "UNKNOWN" {
		return own, nil
	}
	if len(f) != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6") {
		return nil, fmt.Errorf("version 1 header %q", strings.TrimSpace(string(line)))
	}
	ip, err := netip.ParseAddr(f[2])
	port, perr := strconv.ParseUint(f[4], 10, 16)
	if err != nil || perr != nil || ip.Is4() != (f[1] == "TCP4") {
		return nil, fmt.Errorf("version 1 header %q", strings.TrimSpace(string(line)))
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), nil
}

func readProxyV2(r io.Reader, own net.Addr) (net.Addr, error) {
	h := make([]byte, 16)
	h[0] = '\r'
	if _, err := io.ReadFull(r, h[1:]); err != nil {
		return nil, err
	}
	if !bytes.Equal(h[:12], proxySig) || h[12]>>4 != 2 {
		return nil, errors.New("not a version 2 header")
	}
	body := make([]byte, binary.BigEndian.Uint16(h[14:16]))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	switch cmd, fam := h[12]&0xf, h[13]; {
	case cmd == 0: // LOCAL: the balancer itself
		return own, nil
	case cmd != 1:
		return nil, fmt.Errorf("version 2 command %d", cmd)
	case fam == 0x11 && len(body) >= 12:
		a := netip.AddrFrom4([4]byte(body[0:4]))
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, binary.BigEndian.Uint16(body[8:10]))), nil
	case fam == 0x21 && len(body) >= 36:
		a := netip.AddrFrom16([16]byte(body[0:16]))
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, binary.BigEndian.Uint16(body[32:34]))), nil
	case fam == 0x00:
		return own, nil
	}
	return nil, fmt.Errorf("version 2 address family %#x", h[13])
}
