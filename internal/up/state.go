package up

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/trust"
)

// DefaultStateDir holds a directory per network namespace (NetnsStateDir), each
// with one NAME.json per interface wgnet brought up there, the userspace daemons'
// pid and log files. Like /run itself it is gone after a reboot, and so are the
// interfaces it describes. wgnet before namespaces were kept apart wrote those
// files into DefaultStateDir itself; NetnsStateDir moves them.
const DefaultStateDir = "/run/wgnet"

// stateVersion is bumped when State changes incompatibly.
const stateVersion = 1

// State records what `wgnet up` did to the host, so that `wgnet down` removes
// exactly that and puts back what it changed. It is written after every step, so
// that a crash half-way still leaves a record of what to undo.
type State struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	// Netns is the inode of the network namespace the interface is in (as
	// /proc/self/ns/net gives it); 0 in records written before it was kept.
	// LoadState refuses a record of another namespace: wg0 in one namespace is
	// not wg0 in another.
	Netns   uint64    `json:"netns,omitempty"`
	Source  string    `json:"source,omitempty"` // config file, or "spec.yaml --host h1"
	Started time.Time `json:"started"`
	// Complete is set once every step of up succeeded.
	Complete bool `json:"complete"`

	Backend string `json:"backend,omitempty"` // device.BackendKernel or BackendUserspace
	PID     int    `json:"pid,omitempty"`     // userspace daemon
	LogFile string `json:"log_file,omitempty"`

	Addresses []netip.Prefix  `json:"addresses,omitempty"` // added by up
	Routes    []hostnet.Route `json:"routes,omitempty"`    // added by up
	Sysctls   []SysctlChange  `json:"sysctls,omitempty"`   // changed by up, in order
	// Needs lists host-wide sysctls (not the interface's own) that this interface
	// relies on, changed by it or not: IPv6 forwarding on kernels without
	// force_forwarding. Down does not turn off what another interface still needs;
	// it hands its record of the old value over to that interface instead.
	Needs    []string `json:"needs,omitempty"`
	Firewall string   `json:"firewall,omitempty"` // nftables inet table created by up
	// Tunnel records a full tunnel's table, rules and nftables tables (tunnel.go).
	Tunnel *TunnelState `json:"tunnel,omitempty"`
	// Kept are host-wide sysctls set for the config that down leaves set, as
	// wg-quick does (src_valid_mark): down says so.
	Kept []SysctlChange `json:"kept,omitempty"`
	// HostFirewall are the rules up or sync added to the host's own forward
	// firewall (iptables, with the opt-in; see hostfw.go); down deletes them.
	HostFirewall []dockerfw.Rule `json:"host_firewall,omitempty"`
	// HostFirewallMode is the opt-in the rules were made under, kept for the
	// syncs of a config that does not say (the flag was given to up).
	HostFirewallMode string `json:"host_firewall_mode,omitempty"`
	// DNS are the config's DNS = entries up handed to resolvconf, as the record
	// DNSName (PREFIX+NAME, read from the interface-order file at up); down runs
	// resolvconf -d DNSName -f. Empty when the config has no DNS.
	DNS     []string `json:"dns,omitempty"`
	DNSName string   `json:"dns_name,omitempty"`

	// SaveConfig is the config file written back on down (SaveConfig = true),
	// as wg-quick does; "" for none.
	SaveConfig string `json:"save_config,omitempty"`

	// Hooks to run on down, from the config as it was at up.
	PreDown  []string `json:"pre_down,omitempty"`
	PostDown []string `json:"post_down,omitempty"`

	// Peers names peers by public key (base64), from the config's "# name" comments
	// or the spec, for `wgnet show`.
	Peers map[string]string `json:"peers,omitempty"`

	// Endpoints are the peers' endpoints as the config gave them (resolved) at the
	// last up or sync, by public key (base64). Sync sets a peer's endpoint only
	// when the config changed it, so that a peer that roamed is left where it is.
	Endpoints map[string]netip.AddrPort `json:"endpoints,omitempty"`
	// Adopted is set when another tool (wg-quick) made the interface and `wgnet
	// sync` took it over: down then deletes the link, like wg-quick down, instead
	// of stopping a daemon of its own.
	Adopted bool `json:"adopted,omitempty"`
	// Synced is when `wgnet sync` last changed the interface.
	Synced time.Time `json:"synced,omitzero"`
}

// SysctlChange is one kernel parameter up changed.
type SysctlChange struct {
	Key string `json:"key"` // '/'-separated, as hostnet takes it
	Old string `json:"old"`
	New string `json:"new"`
}

func statePath(dir, name string) string { return filepath.Join(dir, name+".json") }

// save writes st atomically, 0600 in a 0700 directory that must be trusted
// (trust.Path): down runs the hooks a state file records, as root. It stamps st
// with this network namespace, and refuses a record of another one.
func (st *State) save(dir string) error {
	if here, err := netnsHere(); err == nil {
		if st.Netns != 0 && st.Netns != here {
			return otherNetns(dir, st, here)
		}
		st.Netns = here
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("state of %s: %w", st.Name, err)
	}
	if err := trust.Path(dir); err != nil {
		return fmt.Errorf("state of %s: %w", st.Name, err)
	}
	// Not fsync'd: the record describes interfaces that a reboot ends, and
	// up writes it once per step (see atomicfile.WriteRuntime).
	return atomicfile.WriteRuntime(statePath(dir, st.Name), append(b, '\n'), 0o600, 0o700)
}

// LoadState reads the state file of interface name from dir ("" means
// NetnsStateDir()). It returns an error wrapping os.ErrNotExist when wgnet did not
// bring name up, and a StateError of kind ErrOtherNetns when the record is of an
// interface in another network namespace. The directory and the file must be
// trusted (trust.Path, trust.Open): a state file planted by someone else would
// have down run its hooks as root.
func LoadState(dir, name string) (*State, error) {
	if dir == "" {
		dir = NetnsStateDir()
	}
	st, err := ReadState(dir, name)
	if err != nil {
		return nil, err
	}
	if here, err := netnsHere(); err == nil && st.Netns != 0 && st.Netns != here {
		return nil, otherNetns(dir, st, here)
	}
	return st, nil
}

// ReadState is LoadState for a look at records of every namespace (a test's
// lab, whose namespaces share one state directory): it does not refuse a record
// of another network namespace. Nothing that acts on the record may use it.
func ReadState(dir, name string) (*State, error) {
	b, err := readStateFile(dir, statePath(dir, name))
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", name, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state of %s: %s: %w", name, statePath(dir, name), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state of %s: %s: version %d, this wgnet reads %d", name, statePath(dir, name), st.Version, stateVersion)
	}
	if st.Name != name {
		return nil, fmt.Errorf("state of %s: %s describes %q", name, statePath(dir, name), st.Name)
	}
	return &st, nil
}

// otherNetns is the refusal of st, a record of another network namespace.
func otherNetns(dir string, st *State, here uint64) error {
	return &StateError{Kind: ErrOtherNetns, Name: st.Name, State: statePath(dir, st.Name),
		Msg: fmt.Sprintf("%s: %s is of %s in another network namespace (%s), not this one (%s)",
			st.Name, statePath(dir, st.Name), st.Name, netnsName(st.Netns), netnsName(here))}
}

func removeState(dir, name string) error {
	if err := os.Remove(statePath(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove state of %s: %w", name, err)
	}
	return nil
}

// readStateFile reads path, a file in the state directory dir, if both are
// trusted; a symlink is refused, not followed.
func readStateFile(dir, path string) ([]byte, error) {
	if err := trust.Path(dir); err != nil {
		return nil, err
	}
	return trust.ReadFile(path)
}
