package up

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/wgnet/wgnet/internal/devconf"
	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// nameRE is wg-quick's rule for interface names.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_=+.-]{1,15}$`)

// ValidName reports whether name is an interface name wg-quick (and wgnet) accepts
// and Linux allows (not "." or "..", which would also name directories).
func ValidName(name string) bool { return nameRE.MatchString(name) && name != "." && name != ".." }

// plan is everything up will do, worked out before anything is touched.
type plan struct {
	name string
	// want is the WireGuard configuration, endpoints resolved.
	want *devconf.Want
	// mtu is the configured MTU, or 0 to work it out like wg-quick.
	mtu       int
	addresses []netip.Prefix
	// table is where routes go: 0 with autoTable (main, skipping prefixes the
	// interface's routes already cover, like wg-quick), or an explicit table.
	table     int
	autoTable bool
	noRoutes  bool // Table = off
	// fwMark is the config's FwMark: a full tunnel's table when set.
	fwMark uint32
	// saveConfig is the file a SaveConfig = true config is written back to on
	// down (saveconfig.go).
	saveConfig string
	allowed    []netip.Prefix // every peer's AllowedIPs, longest prefix first
	endpoints  []netip.Addr   // resolved endpoint IPs, for the MTU

	forwardV4, forwardV6 bool
	clampMSS             bool
	// hostFirewall is the opt-in to opening the host's forward firewall.
	hostFirewall dockerfw.Mode
	// hostFirewallSet says the config (or flag) gave it, "off" included;
	// otherwise the mode recorded at the last up or sync stays.
	hostFirewallSet bool
	// filter is the segmentation policy's filter; nil: none.
	filter *hostnet.Filter
	// subnets are the routed subnets behind the host, whose front interfaces
	// must forward too (subnetForwarding).
	subnets []netip.Prefix

	preUp, postUp, preDown, postDown []string
	// dns are the DNS = entries, for resolvconf at create (setDNS).
	dns []string

	peers map[string]string // public key → name
}

// where prefixes a problem with file:line when the config came from a file.
func where(file string, line int) string {
	if file == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d: ", file, line)
}

// makePlan checks the request and works out what to do. It returns every problem
// it finds, joined. It does not touch the host; it only resolves endpoint names.
func makePlan(ctx context.Context, req Request, opts *Options) (*plan, error) {
	if req.Host == nil {
		return nil, errors.New("no configuration")
	}
	pl := &planner{h: req.Host, p: &plan{name: req.Name, mtu: req.Host.MTU, peers: map[string]string{}}, rtTables: opts.RtTables}
	if !ValidName(req.Name) {
		pl.bad("interface name %q: must match %s (at most 15 characters)", req.Name, nameRE)
	}
	pl.iface()
	pl.peers(ctx, opts.Resolve)
	pl.hostParts()
	if len(pl.errs) > 0 {
		return nil, errors.Join(pl.errs...)
	}
	p := pl.p
	p.want = devconf.FromHost(pl.h, func(peer wgconf.Peer) (netip.AddrPort, bool) {
		ap, ok := pl.resolved[peer.PublicKey]
		return ap, ok
	})
	if pl.key != nil {
		p.want.PrivateKey = pl.key
	}
	return p, nil
}

// planner is one makePlan in progress: the plan being filled in and every
// problem found so far.
type planner struct {
	h        *intent.Host
	p        *plan
	rtTables []string // directories of rt_tables files (Options.RtTables)
	errs     []error
	key      *wgkey.Private // read from h.KeyFile
	resolved map[wgkey.Key]netip.AddrPort
}

func (pl *planner) bad(format string, a ...any) { pl.errs = append(pl.errs, fmt.Errorf(format, a...)) }

// iface checks the interface's own settings: the wg-quick keys wgnet refuses
// rather than half-implements, the key file, the routing table, addresses and MTU.
func (pl *planner) iface() {
	ic, p := pl.h, pl.p
	p.dns = slices.Clone(ic.DNS)
	p.fwMark = ic.FwMark
	if ic.SaveConfig {
		if ic.Pos.File == "" {
			pl.bad("SaveConfig = true: needs a config file to write back to")
		} else if path, err := saveConfigPath(ic.Pos.File); err != nil {
			pl.bad("%sSaveConfig = true: %v", where(ic.Pos.File, ic.Pos.KeyLine(wgconf.KeySaveConfig)), err)
		} else {
			p.saveConfig = path
		}
	}
	if ic.KeyFile != "" {
		k, err := ReadKeyFile(ic.KeyFile)
		if err != nil {
			pl.bad("%sprivate key: %v", where(ic.Pos.File, ic.Pos.KeyLine(wgconf.KeyPostUp)), err)
		} else {
			pl.key = &k
		}
	}
	switch t := ic.Table; {
	case t == "" || t == "auto":
		p.autoTable = true
	case t == "off":
		p.noRoutes = true
	case t == "main":
		p.table = 254
	default:
		n, err := strconv.ParseUint(t, 10, 32)
		if err != nil {
			id, ok, rerr := lookupRtTable(t, pl.rtTables)
			switch {
			case rerr != nil:
				pl.bad("%sTable = %s: %v", where(ic.Pos.File, ic.Pos.KeyLine(wgconf.KeyTable)), t, rerr)
			case !ok:
				pl.bad("%sTable = %s: no table of that name in %s", where(ic.Pos.File, ic.Pos.KeyLine(wgconf.KeyTable)), t, strings.Join(rtTablesFiles(pl.rtTables), ", "))
			}
			n, err = uint64(id), nil
		}
		if err == nil && (n == 0 || n == 255) {
			pl.bad("%sTable = %s: wgnet accepts auto, off, main, a table number or a table name from rt_tables, other than 0 (unspec) and 255 (local)", where(ic.Pos.File, ic.Pos.KeyLine(wgconf.KeyTable)), t)
		}
		p.table = int(n)
	}
	minMTU := 576
	for _, a := range ic.Addresses {
		if a.Addr().Is6() {
			minMTU = 1280
		}
		if a.Addr().Zone() != "" || !a.IsValid() {
			pl.bad("%sAddress %s: invalid", where(ic.Pos.File, ic.Pos.KeyLine(wgconf.KeyAddress)), a)
		}
	}
	if ic.MTU != 0 && (ic.MTU < minMTU || ic.MTU > 65535) {
		pl.bad("%sMTU = %d: must be %d-65535", where(ic.Pos.File, ic.Pos.KeyLine(wgconf.KeyMTU)), ic.MTU, minMTU)
	}
	p.addresses = slices.Clone(ic.Addresses)
	if dup := firstDup(p.addresses); dup.IsValid() {
		pl.bad("%sAddress %s: given twice", where(ic.Pos.File, ic.Pos.KeyLine(wgconf.KeyAddress)), dup)
	}
}

// peers checks every peer (a key, no key twice, no prefix on two peers, no
// default route without a table) and resolves their endpoints. Keyed by value
// and labelled only for a message: the loop runs once per peer, ten thousand
// times on a hub, on every sync.
func (pl *planner) peers(ctx context.Context, resolve func(context.Context, string) (netip.Addr, error)) {
	ic, p := pl.h, pl.p
	owner := make(map[netip.Prefix]int, len(ic.Peers)) // peer index
	seenKey := make(map[wgkey.Key]bool, len(ic.Peers))
	pl.resolved = map[wgkey.Key]netip.AddrPort{}
	labelOf := func(peer *wgconf.Peer) string {
		if peer.Name != "" {
			return peer.Name + " (" + peer.PublicKey.String() + ")"
		}
		return peer.PublicKey.String()
	}
	for i := range ic.Peers {
		peer := &ic.Peers[i]
		w := func(key string) string {
			if peer.Pos.Line == 0 { // not read from a file
				return ""
			}
			return where(ic.Pos.File, peer.Pos.KeyLine(key))
		}
		if peer.PublicKey.IsZero() {
			pl.bad("%speer %s: no public key", w(wgconf.KeyPublicKey), labelOf(peer))
			continue
		}
		if seenKey[peer.PublicKey] {
			pl.bad("%speer %s: public key given to two peers", w(wgconf.KeyPublicKey), labelOf(peer))
		}
		seenKey[peer.PublicKey] = true
		if peer.Name != "" {
			p.peers[peer.PublicKey.String()] = peer.Name
		}
		for _, a := range peer.AllowedIPs {
			m := a.Masked()
			if o, ok := owner[m]; ok && o != i && labelOf(&ic.Peers[o]) != labelOf(peer) {
				pl.bad("%speer %s: AllowedIPs %s is also given to %s; WireGuard would silently keep only the last", w(wgconf.KeyAllowedIPs), labelOf(peer), m, labelOf(&ic.Peers[o]))
			}
			owner[m] = i
		}
		if e := peer.Endpoint; e != nil {
			ip, ok := e.Addr()
			if !ok {
				r, err := resolve(ctx, e.Host)
				if err != nil {
					pl.bad("%speer %s: Endpoint %s: %v", w(wgconf.KeyEndpoint), labelOf(peer), e, err)
					continue
				}
				ip = r
			}
			ap := netip.AddrPortFrom(ip.Unmap(), e.Port)
			pl.resolved[peer.PublicKey] = ap
			p.endpoints = append(p.endpoints, ap.Addr())
		}
	}
	p.allowed = make([]netip.Prefix, 0, len(owner))
	for m := range owner {
		p.allowed = append(p.allowed, m)
	}
	sortLongestFirst(p.allowed)
}

// hostParts takes the host side of the intent: forwarding, the firewall, the
// routed subnets and the user's hooks (never a key-loading hook whose path is
// not plain data).
func (pl *planner) hostParts() {
	ic, p := pl.h, pl.p
	p.forwardV4, p.forwardV6 = ic.Forward.V4, ic.Forward.V6
	p.clampMSS = ic.Firewall.ClampMSS
	pl.hostFirewallMode()
	var err error
	if p.filter, err = hostFilter(ic.Firewall.Filter, p.name); err != nil {
		pl.bad("%v", err)
	}
	p.subnets = slices.Clone(ic.Routes)
	if len(p.subnets) == 0 {
		p.subnets = intent.CommentedRoutes(ic.Comments)
	}
	p.preUp = slices.Clone(ic.Hooks.PreUp)
	p.postUp = slices.Clone(ic.Hooks.PostUp)
	p.preDown = slices.Clone(ic.Hooks.PreDown)
	p.postDown = slices.Clone(ic.Hooks.PostDown)
	// A key-loading hook that intent did not take as KeyFile carries a path
	// that is not plain data (`/k; curl x | sh`): never hand it to a shell.
	for _, h := range ic.Hooks.PostUp {
		if _, ok := intent.KeyHookPath(h); intent.IsKeyHook(h) && !ok {
			pl.bad("%sPostUp = %.80q: the key file path must be %s; refusing to run it", where(ic.Pos.File, ic.Pos.KeyLine(wgconf.KeyPostUp)), h, wgkey.PathRule)
		}
	}
}

// sortLongestFirst orders prefixes as wg-quick walks them:
// `wg show IFACE allowed-ips | sort -nr -k 2 -t /`.
func sortLongestFirst(ps []netip.Prefix) {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := cmp.Compare(b.Bits(), a.Bits()); c != 0 {
			return c
		}
		return a.Addr().Compare(b.Addr())
	})
}

func firstDup(ps []netip.Prefix) netip.Prefix {
	seen := map[netip.Prefix]bool{}
	for _, p := range ps {
		if seen[p] {
			return p
		}
		seen[p] = true
	}
	return netip.Prefix{}
}

// routes works out the routes for the allowed IPs like wg-quick's add_route: in an
// explicit table, every prefix; in auto mode, every prefix that no main-table
// route through the interface already covers (`ip route show dev IFACE match P`),
// longest prefixes first. existing is the interface's main-table routes.
//
// wg-quick also counts the routes it added before P, but those are as long as P
// or longer (it walks longest first), so they cover P only when they are P, and
// the allowed IPs hold no prefix twice: only existing can cover P. Checking
// against it alone keeps this linear in the allowed IPs (it was quadratic:
// 10,000 routes took a fifth of a second).
func (p *plan) routes(existing []netip.Prefix) []netip.Prefix {
	if p.noRoutes {
		return nil
	}
	var out []netip.Prefix
	for _, a := range p.allowed {
		if p.autoTable && a.Bits() == 0 {
			continue // a full tunnel's, in its own table (addTunnel)
		}
		if p.autoTable && slices.ContainsFunc(existing, func(r netip.Prefix) bool {
			return r.Addr().BitLen() == a.Addr().BitLen() && r.Bits() <= a.Bits() && r.Contains(a.Addr())
		}) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// autoMTU is wg-quick's set_mtu_up: the largest MTU of the routes to the
// endpoints, else of the default route, else 1500; minus 80.
func autoMTU(endpointMTUs []int, defaultMTU int) int {
	mtu := 0
	for _, m := range endpointMTUs {
		mtu = max(mtu, m)
	}
	if mtu == 0 {
		mtu = defaultMTU
	}
	if mtu <= 0 {
		mtu = 1500
	}
	return mtu - 80
}
