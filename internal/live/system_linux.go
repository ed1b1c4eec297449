package live

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/iptables"
)

// System is the Prober of the host wgnet runs on (its network namespace): route
// lookups over rtnetlink, the ruleset from iptables-save, ip6tables-save and
// nft, pings from iputils' ping, names from the system resolver.
type System struct{}

// RouteGet asks the kernel, like `ip route get DST mark MARK`.
func (System) RouteGet(dst netip.Addr, mark int) (Route, error) {
	rs, err := netlink.RouteGetWithOptions(dst.AsSlice(), &netlink.RouteGetOptions{Mark: uint32(mark)})
	if err != nil {
		if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ESRCH) {
			return Route{}, nil
		}
		return Route{}, fmt.Errorf("route get %s: %w", dst, err)
	}
	if len(rs) == 0 || rs[0].LinkIndex == 0 {
		return Route{}, nil
	}
	lk, err := netlink.LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		return Route{}, fmt.Errorf("route get %s: link %d: %w", dst, rs[0].LinkIndex, err)
	}
	r := Route{Dev: lk.Attrs().Name, MTU: rs[0].MTU}
	if r.MTU == 0 {
		r.MTU = lk.Attrs().MTU
	}
	return r, nil
}

// Ruleset runs whichever of iptables-save, ip6tables-save and nft are
// installed, each bounded to 10 seconds; a missing tool gives nothing.
func (System) Ruleset(ctx context.Context) (Ruleset, error) {
	var rs Ruleset
	var errs []error
	run := func(argv ...string) string {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := iptables.Run(ctx, argv[0], argv[1:], "")
		if err != nil && !errors.Is(err, iptables.ErrNoProgram) {
			errs = append(errs, err)
		}
		return string(out)
	}
	// Of iptables' two backends, the one that matters: Docker's, else the one
	// with FORWARD policy DROP, else nft (dockerfw.Read); plain iptables-save
	// where neither variant is installed.
	rs.IptablesSave, rs.Ip6tablesSave = run(saveOf(ctx, 4)), run(saveOf(ctx, 6))
	rs.Nft = run("nft", "list", "ruleset")
	return rs, errors.Join(errs...)
}

// Ping sends one DF-set echo request (`ping -M do -s SIZE -c 1 -W 1`).
func (System) Ping(ctx context.Context, dst netip.Addr, size int) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	argv := []string{"-n", "-q", "-M", "do", "-s", strconv.Itoa(size), "-c", "1", "-W", "1", dst.String()}
	if dst.Is6() {
		argv = append([]string{"-6"}, argv...)
	}
	err := exec.CommandContext(ctx, "ping", argv...).Run()
	if err == nil {
		return true, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// 1: no reply; 2: an error such as "message too long" from the
		// local route MTU, which is a packet that does not fit too.
		return false, nil
	}
	return false, fmt.Errorf("ping %s: %w", dst, err)
}

// LookupHost resolves host with the system resolver.
func (System) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for i, a := range ips {
		ips[i] = a.Unmap()
	}
	return ips, nil
}

// saveOf is the iptables-save of family's backend that matters on this host.
func saveOf(ctx context.Context, family int) string {
	v, err := dockerfw.Read(ctx, dockerfw.Exec{}, family)
	if err != nil || v.Backend == "" {
		if family == 6 {
			return "ip6tables-save"
		}
		return "iptables-save"
	}
	return dockerfw.Binary(v.Backend, family, "-save")
}
