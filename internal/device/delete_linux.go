package device

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
)

// Delete removes the WireGuard interface name whatever made it, the way
// `wg-quick down` does (`ip link delete dev NAME`): a kernel link goes at once; a
// userspace implementation (wireguard-go, Debian's or upstream, or wgnet's own
// daemon) exits when its TUN device goes and removes its UAPI socket. Delete waits
// up to timeout (0 means 5 seconds) for that socket to stop answering. A missing
// interface is not an error; a link that is not WireGuard is refused.
//
// It is for interfaces wgnet did not start (adopted by `wgnet sync`); for its own
// daemons Stop is gentler, as it lets the daemon close the TUN itself.
func Delete(name string, timeout time.Duration) error {
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", name, err)
	}
	sock := filepath.Join(SocketDir, name+".sock")
	userspace := l.Type() == "tuntap" || l.Type() == "tun"
	switch {
	case l.Type() == "wireguard":
	case userspace:
		if _, err := os.Stat(sock); err != nil {
			return fmt.Errorf("delete %s: a TUN interface without a WireGuard UAPI socket (%s); not deleting it", name, sock)
		}
	default:
		return fmt.Errorf("delete %s: is a %s interface, not WireGuard", name, l.Type())
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if !userspace {
		return nil
	}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err != nil {
			return nil
		}
		c.Close()
	}
	return fmt.Errorf("delete %s: the userspace daemon still answers on %s %v after its TUN went", name, sock, timeout)
}
