package device

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// uapiTimeout bounds one exchange on a UAPI socket. A set of ten thousand peers
// takes well under a second; a daemon that does not answer in this time is stuck.
const uapiTimeout = 30 * time.Second

// errnoError is a UAPI "errno=N" answer other than 0: the daemon refused the set.
type errnoError int

func (e errnoError) Error() string { return "uapi: errno=" + strconv.Itoa(int(e)) }

// uapiSet sends body (key=value lines, see encodeUAPI) as one set operation to the
// UAPI socket of interface name and returns the daemon's verdict. wgctrl does the
// same for the patches it can express; this is for those it cannot (removing
// single allowed IPs). A daemon applies a set line by line and stops at the first
// line it refuses, so a refused set may be partly applied: probe first.
func uapiSet(name, body string) error {
	c, err := dialUAPI(name)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("set=1\n" + body + "\n")); err != nil {
		return fmt.Errorf("uapi write: %w", err)
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "errno="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("uapi: bad answer %q", line)
			}
			if n != 0 {
				return errnoError(n)
			}
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("uapi read: %w", err)
	}
	return errors.New("uapi: connection closed without an answer")
}

// probeRemoval asks the daemon behind interface name whether it understands
// "allowed_ip=-PREFIX", without changing anything. The set names the device's own
// public key (zero when it has no private key), which wireguard-go takes as a
// placeholder and never creates (a random key would be created and deleted again,
// with update_only, by upstream wireguard-go), so a daemon that understands the
// line ignores it and one that does not refuses it (errno=-22). update_only is
// there in case the key changed since it was read: then no peer is made either.
// It returns an error only when the daemon could not be asked.
func probeRemoval(name string, own [32]byte) (bool, error) {
	err := uapiSet(name, "public_key="+hex.EncodeToString(own[:])+"\nupdate_only=true\nallowed_ip=-0.0.0.0/32\n")
	var errno errnoError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &errno):
		return false, nil
	}
	return false, err
}

// hasRemovals reports whether c removes single allowed IPs.
func hasRemovals(c Config) bool {
	for _, p := range c.Peers {
		if len(p.RemoveAllowedIPs) > 0 && !p.Remove {
			return true
		}
	}
	return false
}

// uapiGet reads the device behind interface name from its UAPI socket with a
// plain get, parsing the answer as it arrives (readState), in a fraction of
// the time wgctrl's reader takes for ten thousand peers.
func uapiGet(name string) (*State, error) {
	c, err := dialUAPI(name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "get=1\n\n"); err != nil {
		return nil, fmt.Errorf("uapi write: %w", err)
	}
	st, _, err := readState(c)
	return st, err
}

// dialUAPI connects to the UAPI socket of interface name, with uapiTimeout
// as the deadline of the whole exchange.
func dialUAPI(name string) (net.Conn, error) {
	c, err := net.DialTimeout("unix", filepath.Join(SocketDir, name+".sock"), uapiTimeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(uapiTimeout))
	return c, nil
}

// stateGet reads the device behind interface name with stateOp: all of it
// (keys nil) or only the peers with these keys. A daemon without stateOp is
// errStateUnsupported.
func stateGet(name string, keys []wgkey.Key) (*State, error) {
	c, err := dialUAPI(name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var b strings.Builder
	b.WriteString(stateOp)
	if keys == nil {
		b.WriteString("peers=all\n")
	}
	for _, k := range keys {
		b.WriteString("public_key=" + k.Hex() + "\n")
	}
	b.WriteString("\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		return nil, fmt.Errorf("uapi write: %w", err)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	head := make([]byte, len(stateMagic)+4)
	if _, err := io.ReadFull(br, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errStateUnsupported
		}
		return nil, fmt.Errorf("uapi read: %w", err)
	}
	if string(head[:len(stateMagic)]) != stateMagic {
		return nil, errStateUnsupported // "errno=N": refused, or not known
	}
	body := make([]byte, binary.LittleEndian.Uint32(head[len(stateMagic):]))
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, fmt.Errorf("uapi read: %w", err)
	}
	return decodeState(body)
}

// readState reads one UAPI get answer and parses it as it arrives, so that
// the parsing of 10,000 peers overlaps the daemon's writing of them: lines up
// to the blank line that ends the answer (after "errno=N"). first is the
// answer's first line. A connection closed before the blank line is
// io.ErrUnexpectedEOF.
func readState(c net.Conn) (st *State, first string, err error) {
	var d uapiDecoder
	buf := make([]byte, 64<<10)
	var tail string // a line cut by the end of a read
	for {
		n, rerr := c.Read(buf)
		chunk := tail + string(buf[:n])
		for {
			i := strings.IndexByte(chunk, '\n')
			if i < 0 {
				break
			}
			line := chunk[:i]
			chunk = chunk[i+1:]
			if line == "" {
				return d.finish(), first, nil
			}
			if d.n == 0 {
				first = line
			}
			if err := d.line(line); err != nil {
				return nil, first, err
			}
		}
		tail = chunk
		switch {
		case rerr == io.EOF:
			return nil, first, io.ErrUnexpectedEOF
		case rerr != nil:
			return nil, first, fmt.Errorf("uapi read: %w", rerr)
		}
	}
}
