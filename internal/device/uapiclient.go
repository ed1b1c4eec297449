package device

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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
	c, err := net.DialTimeout("unix", filepath.Join(SocketDir, name+".sock"), uapiTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(uapiTimeout))
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
