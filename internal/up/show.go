package up

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// Interface is one WireGuard interface as `wgnet show` reports it.
type Interface struct {
	Name    string `json:"name"`
	Backend string `json:"backend"`
	// Wgnet is set when wgnet brought the interface up (it has a state file).
	Wgnet      bool   `json:"wgnet"`
	Source     string `json:"source,omitempty"`
	PID        int    `json:"pid,omitempty"`
	PublicKey  string `json:"public_key,omitempty"`
	ListenPort int    `json:"listen_port"`
	FwMark     int    `json:"fwmark,omitempty"`
	Peers      []Peer `json:"peers"`
	// NotRunning is set when wgnet brought the interface up (its state record is
	// there) but it is gone: its userspace daemon died, or someone deleted it.
	// `wgnet down NAME` cleans up what is left. LogFile is the daemon's log.
	NotRunning bool   `json:"not_running,omitempty"`
	LogFile    string `json:"log_file,omitempty"`
}

// Peer is one peer in Interface.
type Peer struct {
	// Name is the peer's host name, from the spec or the config's "# name"
	// comments; "" when unknown.
	Name                string         `json:"name,omitempty"`
	PublicKey           string         `json:"public_key"`
	Endpoint            string         `json:"endpoint,omitempty"`
	AllowedIPs          []netip.Prefix `json:"allowed_ips"`
	LatestHandshake     *time.Time     `json:"latest_handshake,omitempty"`
	HandshakeAgeSeconds *int64         `json:"handshake_age_seconds,omitempty"`
	RxBytes             int64          `json:"rx_bytes"`
	TxBytes             int64          `json:"tx_bytes"`
	PersistentKeepalive int            `json:"persistent_keepalive,omitempty"`
	// State is PeerUp, PeerIdle or PeerNoReply.
	State string `json:"state"`
}

// Peer states.
const (
	// PeerUp: a handshake completed within the last 3 minutes (a session lives
	// at most that long without a new handshake, so the peer is reachable now).
	PeerUp = "up"
	// PeerIdle: no handshake within 3 minutes and no sign of trouble: nothing
	// was sent, or the peer did answer at some point. WireGuard only handshakes
	// when there is traffic, so an idle peer may be perfectly healthy.
	PeerIdle = "idle"
	// PeerNoReply: bytes were sent (at least a handshake initiation) and nothing
	// ever came back: wrong key, wrong endpoint, or a firewall in the way.
	PeerNoReply = "no-reply"
)

// handshakeFresh is how recent a handshake must be for PeerUp (REJECT_AFTER_TIME).
const handshakeFresh = 180 * time.Second

// PeerState classifies a peer from its counters and last handshake.
func PeerState(p device.PeerState, now time.Time) string {
	switch {
	case !p.LastHandshake.IsZero() && now.Sub(p.LastHandshake) < handshakeFresh:
		return PeerUp
	case p.TxBytes > 0 && p.RxBytes == 0:
		return PeerNoReply
	}
	return PeerIdle
}

// StatusOptions configure Status. The zero value reads NetnsStateDir() and
// /etc/wireguard and uses the current time.
type StatusOptions struct {
	StateDir  string
	ConfigDir string // for peer names of interfaces wgnet did not bring up
	Now       time.Time
}

// Status reports the named WireGuard interfaces, or every one when names is
// empty: kernel interfaces and userspace ones that serve a UAPI socket (wgnet's,
// wg-quick's with wireguard-go, any other).
func Status(names []string, opts StatusOptions) ([]Interface, error) {
	if opts.StateDir == "" {
		opts.StateDir = NetnsStateDir()
	}
	if opts.ConfigDir == "" {
		opts.ConfigDir = "/etc/wireguard"
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	all, err := device.List()
	if err != nil {
		return nil, err
	}
	var out []Interface
	var errs []error
	for _, s := range all {
		if len(names) > 0 && !slices.Contains(names, s.Name) {
			continue
		}
		out = append(out, describe(s, opts))
	}
	// Interfaces wgnet brought up that are gone: shown, marked, so that a dead
	// daemon is not silently missing from the list.
	recorded, _ := Names(opts.StateDir)
	wanted := names
	if len(names) == 0 {
		wanted = recorded
	}
	for _, n := range wanted {
		if slices.ContainsFunc(all, func(s *device.State) bool { return s.Name == n }) {
			continue
		}
		st, err := LoadState(opts.StateDir, n)
		switch {
		case err == nil:
			out = append(out, Interface{Name: n, Backend: st.Backend, Wgnet: true, Source: st.Source, PID: st.PID,
				Peers: []Peer{}, NotRunning: true, LogFile: st.LogFile})
			if len(names) > 0 {
				errs = append(errs, &StateError{Kind: ErrNotRunning, Name: n, State: statePath(opts.StateDir, n), LogFile: st.LogFile,
					Msg: fmt.Sprintf("%s: wgnet brought it up (%s backend) but it is not running", n, st.Backend)})
			}
		case len(names) == 0:
			// Another namespace's record in a shared WGNET_STATE_DIR, or a broken
			// one: not this namespace's interface.
		case errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("%s: no such WireGuard interface", n))
		default:
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

func describe(s *device.State, opts StatusOptions) Interface {
	ifc := Interface{Name: s.Name, Backend: s.Backend, ListenPort: s.ListenPort, FwMark: s.FwMark}
	if !s.PublicKey.IsZero() {
		ifc.PublicKey = s.PublicKey.String()
	}
	names := map[string]string{}
	if st, err := LoadState(opts.StateDir, s.Name); err == nil {
		ifc.Wgnet, ifc.Source, ifc.PID = true, st.Source, st.PID
		names = st.Peers
	} else if src, err := os.ReadFile(filepath.Join(opts.ConfigDir, s.Name+".conf")); err == nil {
		// Best effort: a config that does not parse just gives no names.
		if c, _ := wgconf.Parse(s.Name+".conf", src); c != nil {
			for _, p := range c.Peers {
				if p.Name != "" {
					names[p.PublicKey.String()] = p.Name
				}
			}
		}
	}
	s.Normalize()
	for _, p := range s.Peers {
		ps := Peer{
			Name:                names[p.PublicKey.String()],
			PublicKey:           p.PublicKey.String(),
			AllowedIPs:          p.AllowedIPs,
			RxBytes:             p.RxBytes,
			TxBytes:             p.TxBytes,
			PersistentKeepalive: int(p.PersistentKeepalive / time.Second),
			State:               PeerState(p, opts.Now),
		}
		if p.Endpoint.IsValid() {
			ps.Endpoint = p.Endpoint.String()
		}
		if !p.LastHandshake.IsZero() {
			t := p.LastHandshake.UTC()
			age := int64(opts.Now.Sub(p.LastHandshake) / time.Second)
			ps.LatestHandshake, ps.HandshakeAgeSeconds = &t, &age
		}
		if ps.AllowedIPs == nil {
			ps.AllowedIPs = []netip.Prefix{}
		}
		ifc.Peers = append(ifc.Peers, ps)
	}
	// Named peers first, by name, like a host list; then the rest by key.
	slices.SortStableFunc(ifc.Peers, func(a, b Peer) int {
		switch {
		case a.Name != "" && b.Name == "":
			return -1
		case a.Name == "" && b.Name != "":
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	if ifc.Peers == nil {
		ifc.Peers = []Peer{}
	}
	return ifc
}

// WriteText prints interfaces the way `wg show` does, with peer names and states.
func WriteText(w io.Writer, ifcs []Interface) error {
	var b strings.Builder
	for i, ifc := range ifcs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "interface: %s (%s", ifc.Name, ifc.Backend)
		if ifc.Wgnet {
			b.WriteString(", wgnet")
			if ifc.PID != 0 {
				fmt.Fprintf(&b, " pid %d", ifc.PID)
			}
		}
		b.WriteString(")\n")
		if ifc.NotRunning {
			b.WriteString("  NOT RUNNING: wgnet brought it up, but it is gone")
			if ifc.LogFile != "" {
				fmt.Fprintf(&b, " (see %s)", ifc.LogFile)
			}
			fmt.Fprintf(&b, "; run `wgnet down %s` to clean up\n", ifc.Name)
			continue
		}
		if ifc.PublicKey != "" {
			fmt.Fprintf(&b, "  public key: %s\n", ifc.PublicKey)
		}
		fmt.Fprintf(&b, "  listening port: %d\n", ifc.ListenPort)
		if ifc.FwMark != 0 {
			fmt.Fprintf(&b, "  fwmark: 0x%x\n", ifc.FwMark)
		}
		for _, p := range ifc.Peers {
			b.WriteString("\n")
			if p.Name != "" {
				fmt.Fprintf(&b, "peer: %s (%s)\n", p.Name, p.PublicKey)
			} else {
				fmt.Fprintf(&b, "peer: %s\n", p.PublicKey)
			}
			fmt.Fprintf(&b, "  state: %s\n", p.State)
			if p.Endpoint != "" {
				fmt.Fprintf(&b, "  endpoint: %s\n", p.Endpoint)
			}
			ips := make([]string, len(p.AllowedIPs))
			for i, a := range p.AllowedIPs {
				ips[i] = a.String()
			}
			if len(ips) == 0 {
				ips = []string{"(none)"}
			}
			fmt.Fprintf(&b, "  allowed ips: %s\n", strings.Join(ips, ", "))
			if p.HandshakeAgeSeconds != nil {
				fmt.Fprintf(&b, "  latest handshake: %s ago\n", age(*p.HandshakeAgeSeconds))
			}
			if p.RxBytes != 0 || p.TxBytes != 0 {
				fmt.Fprintf(&b, "  transfer: %s received, %s sent\n", bytesIEC(p.RxBytes), bytesIEC(p.TxBytes))
			}
			if p.PersistentKeepalive != 0 {
				fmt.Fprintf(&b, "  persistent keepalive: every %s\n", age(int64(p.PersistentKeepalive)))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// age renders seconds as wg does: "1 hour, 2 minutes, 3 seconds".
func age(s int64) string {
	if s <= 0 {
		return "0 seconds"
	}
	var parts []string
	for _, u := range []struct {
		n    int64
		name string
	}{{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}} {
		if v := s / u.n; v > 0 {
			s -= v * u.n
			p := fmt.Sprintf("%d %s", v, u.name)
			if v != 1 {
				p += "s"
			}
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// bytesIEC renders a byte count as wg does: "1.50 KiB".
func bytesIEC(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprintf("%d B", n)
	case n < k*k:
		return fmt.Sprintf("%.2f KiB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.2f MiB", float64(n)/(k*k))
	case n < k*k*k*k:
		return fmt.Sprintf("%.2f GiB", float64(n)/(k*k*k))
	}
	return fmt.Sprintf("%.2f TiB", float64(n)/(k*k*k*k))
}
