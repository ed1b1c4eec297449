// Package api holds the controller's wire types, version 1 (/v1/...): what the
// HTTP JSON API sends and receives, kept apart from the store's and the spec's
// types and converted at the edge (like tailscale's tailcfg), so that either
// side can change without changing the protocol. Addresses, prefixes and keys
// travel as their usual text forms. No type here has a field for a private
// key. It also defines the CA pin (CAHash) that clients check. It imports
// nothing of wgnet.
package api

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Version is the first API version; every route is under /Version/ (later
// versions keep the routes and change what some answers may carry).
const Version = "v1"

// V2 is v1 plus per-agent deltas: to an agent that speaks v2, an answer of
// GET /v1/agent/changes may carry an AgentDelta (what changed for that host
// since the revision it has) instead of its whole AgentState. An agent that
// speaks only v1 (one release older) gets whole states, as before.
const V2 = "v2"

// Versions are every API version this build speaks, newest first. A client
// (an agent) sends its list in the VersionHeader of each request and the
// controller answers with its own in the same header; each side uses the
// newest version both speak (Negotiate), and a controller refuses a request
// whose list has none it speaks (400, naming both lists). Within a version
// fields are only ever added, and readers ignore fields they don't know, so
// an agent one release older keeps working.
var Versions = []string{V3, V2, Version}

// V3 is v2 plus, in a status report, the peers whose endpoint host name has
// never resolved on the reporting host (PeerStatus.Unresolved). A controller
// that speaks only v2 refuses a report with a field it does not know, so an
// agent sends it only to a controller that says it speaks v3.
const V3 = "v3"

// Includes reports whether version v has what version w brought: v is w or
// newer among Versions (false for a version this build does not know).
func Includes(v, w string) bool {
	i, j := slices.Index(Versions, v), slices.Index(Versions, w)
	return i >= 0 && j >= 0 && i <= j
}

// VersionHeader carries the comma-separated API versions a side speaks.
const VersionHeader = "Wgnet-Api"

// Negotiate returns the newest version of ours (newest first) that theirs
// has too, or an error naming both lists.
func Negotiate(ours, theirs []string) (string, error) {
	for _, v := range ours {
		for _, t := range theirs {
			if strings.TrimSpace(t) == v {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("no common API version: this side speaks %s, the other %s (upgrade the older one)",
		strings.Join(ours, ","), strings.Join(theirs, ","))
}

// ParseVersions splits a VersionHeader value.
func ParseVersions(h string) []string {
	var out []string
	for _, v := range strings.Split(h, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Health is GET /healthz: Status "ok" (200) or "unavailable" (503), for a
// load balancer; Database "reachable" or "unreachable"; Migrations "current"
// or what is wrong; Following, for a shared database, whether the
// controller's change follower (LISTEN) is connected.
type Health struct {
	Status       string `json:"status"`
	API          string `json:"api"`
	Store        string `json:"store"`
	Database     string `json:"database"`
	Migrations   string `json:"migrations"`
	Schema       int    `json:"schema"`
	SchemaWanted int    `json:"schema_wanted"`
	Following    *bool  `json:"following,omitempty"`
}

// Network is a network as listed.
type Network struct {
	Name     string   `json:"name"`
	Subnets  []string `json:"subnets"`
	Topology string   `json:"topology"`
	Hub      string   `json:"hub,omitempty"`
	Revision uint64   `json:"revision"`
}

// CreateNetwork is the body of POST /v1/networks.
type CreateNetwork struct {
	Name     string   `json:"name"`
	Subnets  []string `json:"subnets"`
	Topology string   `json:"topology"` // hub | mesh
}

// Host is one host of a network: public data only.
type Host struct {
	Name      string   `json:"name"`
	PublicKey string   `json:"public_key"`
	Addresses []string `json:"addresses,omitempty"`
	Endpoint  string   `json:"endpoint,omitempty"`
	Routes    []string `json:"routes,omitempty"`
	Keepalive int      `json:"keepalive,omitempty"`
	Tags      []string `json:"tags,omitempty"` // name the host in policy groups (tag:TAG)
	// PendingRoutes are routes the host asked for when it joined beyond its
	// token's: not routed until an admin approves one (set --route) or
	// rejects it (set --remove-route). Read only.
	PendingRoutes []string `json:"pending_routes,omitempty"`
	Hub           bool     `json:"hub,omitempty"` // the network's hub (in AddHost: make it the hub)
	// EndpointPort, in an enrollment without Endpoint, asks the controller to
	// make the host's endpoint the address it sees the request come from with
	// this port (the agent never guesses its address from local interfaces).
	EndpointPort int `json:"endpoint_port,omitempty"`
	Settings
}

// Settings are a host's own settings, as a spec's host has them (wg-quick
// parity, issue 10); an address given with its own prefix length
// ("10.8.0.2/32") in Addresses keeps it. Absent: the network's defaults.
type Settings struct {
	MTU        string   `json:"mtu,omitempty"` // a number or "auto"; "": the network's
	DNS        []string `json:"dns,omitempty"`
	Table      string   `json:"table,omitempty"`  // off, auto, main, a number or a name
	FwMark     uint32   `json:"fwmark,omitempty"` // 0: none
	FullTunnel []string `json:"full_tunnel,omitempty"`
	External   bool     `json:"external,omitempty"`
	NoAddress  bool     `json:"no_address,omitempty"`  // assign_address: false
	RandomPort bool     `json:"random_port,omitempty"` // listen_port: random
}

// Hosts is the answer of GET /v1/networks/{network}/hosts: one revision's view.
type Hosts struct {
	Network Network `json:"network"`
	Hosts   []Host  `json:"hosts"`
}

// HostResult is the answer to a change of one host.
type HostResult struct {
	Host     Host   `json:"host"`
	Revision uint64 `json:"revision"`
}

// Removed is the answer to a removal.
type Removed struct {
	Revision uint64 `json:"revision"`
}

// SetHost is the body of PATCH /v1/networks/{network}/hosts/{host}: nil and
// empty fields leave the host unchanged.
type SetHost struct {
	PublicKey     *string  `json:"public_key,omitempty"`
	Endpoint      *string  `json:"endpoint,omitempty"` // "" removes it
	Addresses     []string `json:"addresses,omitempty"`
	Routes        []string `json:"routes,omitempty"`
	ReplaceRoutes bool     `json:"replace_routes,omitempty"`
	RemoveRoutes  []string `json:"remove_routes,omitempty"`
	Keepalive     *int     `json:"keepalive,omitempty"`
	Hub           bool     `json:"hub,omitempty"`
	AddTags       []string `json:"add_tags,omitempty"`
	RemoveTags    []string `json:"remove_tags,omitempty"`
	// The host's Settings: nil leaves one unchanged, "" or an empty list
	// removes it.
	MTU        *string   `json:"mtu,omitempty"`
	DNS        *[]string `json:"dns,omitempty"`
	Table      *string   `json:"table,omitempty"`
	FwMark     *uint32   `json:"fwmark,omitempty"`
	FullTunnel *[]string `json:"full_tunnel,omitempty"`
	External   *bool     `json:"external,omitempty"`
	NoAddress  *bool     `json:"no_address,omitempty"`
	RandomPort *bool     `json:"random_port,omitempty"`
}

// Config is a host's rendered wg-quick config: public data only. The host's
// own private key is read on the host from PrivateKeyFile by a PostUp hook.
type Config struct {
	Host      string `json:"host"`
	Interface string `json:"interface"`
	Revision  uint64 `json:"revision"`
	WgQuick   string `json:"wg_quick"`
}

// Finding is one problem of a network, as check reports it.
type Finding struct {
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Severity string `json:"severity"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

// Check is the answer of GET /v1/networks/{network}/check.
type Check struct {
	Revision uint64    `json:"revision"`
	Findings []Finding `json:"findings"`
}

// Change is one entry of a network's change log.
type Change struct {
	Revision uint64 `json:"revision"`
	Kind     string `json:"kind"` // network-created | host-added | host-changed | host-removed
	Host     string `json:"host,omitempty"`
	Time     string `json:"time"` // RFC 3339
}

// Changes is the answer of GET /v1/networks/{network}/changes?since=N.
type Changes struct {
	Revision uint64   `json:"revision"` // the network's revision when read
	Changes  []Change `json:"changes"`
}

// Error is the body of every 4xx and 5xx answer.
type Error struct {
	Error string `json:"error"`
}

// CAHashPrefix starts a CA pin, as kubeadm's discovery hashes do.
const CAHashPrefix = "sha256:"

// CAHash returns the pin of a CA: "sha256:" and the hex SHA-256 of its
// DER-encoded public key (SubjectPublicKeyInfo), which stays the same when the
// CA certificate is re-issued with the same key.
func CAHash(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return CAHashPrefix + hex.EncodeToString(sum[:])
}

// ParseCAHash checks the form of a pin and returns it normalised.
func ParseCAHash(s string) (string, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), CAHashPrefix)
	if b, err := hex.DecodeString(h); !ok || err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("CA hash %q: want sha256: and 64 hex digits", s)
	}
	return CAHashPrefix + h, nil
}

// CreateToken is the body of POST /v1/networks/{network}/tokens.
type CreateToken struct {
	TTLSeconds int      `json:"ttl_seconds,omitempty"` // 0: 24 hours
	Uses       int      `json:"uses,omitempty"`        // 0: 1
	Host       string   `json:"host,omitempty"`        // admit only this host name
	Routes     []string `json:"routes,omitempty"`      // subnets the host may claim as routed behind it
}

// Token is the answer: the join token, shown once (only its hash is stored).
type Token struct {
	Token   string   `json:"token"`
	Network string   `json:"network"`
	Uses    int      `json:"uses"`
	Expires string   `json:"expires"` // RFC 3339
	ID      string   `json:"id"`      // names the token in the audit log; not a secret
	URLs    []string `json:"urls"`    // the controller URLs the token carries
	CAHash  string   `json:"ca"`      // the CA pin the token carries
	Routes  []string `json:"routes,omitempty"`
}

// AuditEntry is one line of the audit log: who changed what, when.
type AuditEntry struct {
	Seq      uint64 `json:"seq"`
	Time     string `json:"time"`  // RFC 3339
	Actor    string `json:"actor"` // "admin tok-...", "join token tok-...": never a secret
	Network  string `json:"network,omitempty"`
	Revision uint64 `json:"revision,omitempty"`
	Action   string `json:"action"`
	Subject  string `json:"subject,omitempty"`
}

// Audit is the answer of GET /v1/audit?since=SEQ.
type Audit struct {
	Entries []AuditEntry `json:"entries"`
}

// PeerStatus is one peer of a host as the host's agent reported it.
type PeerStatus struct {
	Host          string `json:"host,omitempty"` // the peer's host name, when its key is the network's
	PublicKey     string `json:"public_key"`
	Endpoint      string `json:"endpoint,omitempty"`
	LastHandshake string `json:"last_handshake,omitempty"` // RFC 3339
	RxBytes       uint64 `json:"rx_bytes"`
	TxBytes       uint64 `json:"tx_bytes"`
	// Unresolved (v3) says the reporting host configured this peer without
	// an endpoint: the peer's endpoint host name has never resolved there.
	Unresolved *UnresolvedEndpoint `json:"unresolved,omitempty"`
}

// UnresolvedEndpoint is a peer's endpoint host name that has never resolved
// on a host (the peer can still dial in: WireGuard learns its address).
type UnresolvedEndpoint struct {
	Host  string `json:"host"`            // the endpoint's host name
	Error string `json:"error,omitempty"` // the resolver's last error
	Since string `json:"since"`           // RFC 3339: the first failed attempt the agent knows of
}

// HostStatus is one host in GET /v1/networks/{network}/status.
type HostStatus struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	Endpoint  string   `json:"endpoint,omitempty"`
	Hub       bool     `json:"hub,omitempty"`
	// LastSeen and Revision are from the host's last report; empty and 0
	// when it never reported.
	LastSeen string       `json:"last_seen,omitempty"`
	Revision uint64       `json:"revision_applied,omitempty"`
	Peers    []PeerStatus `json:"peers,omitempty"`
	// Notes say what the controller knows without a report, e.g. that a mesh
	// host without an endpoint peers only with hosts that have one.
	Notes []string `json:"notes,omitempty"`
}

// Status is the answer of GET /v1/networks/{network}/status.
type Status struct {
	Network  string       `json:"network"`
	Revision uint64       `json:"revision"`
	Hosts    []HostStatus `json:"hosts"`
}

// Enrolled is the answer of POST /v1/enroll.
type Enrolled struct {
	Network  string `json:"network"`
	Host     Host   `json:"host"`
	Revision uint64 `json:"revision"`
	// Credential is the host's agent credential, shown once (the controller
	// keeps only its hash): the bearer of the /v1/agent routes.
	Credential string `json:"credential,omitempty"`
}

// AgentCredentialPrefix starts every agent credential.
const AgentCredentialPrefix = "wgnet-agent-"

// AgentState is the answer of GET /v1/agent/state: what the calling host's
// interface should be, compiled by the controller from public data. It has no
// private key (the host's own never leaves it), no preshared key and no hooks
// or commands: an agent runs nothing the controller sends.
type AgentState struct {
	Network  string `json:"network"`
	Host     string `json:"host"`
	Revision uint64 `json:"revision"`
	// Subnets are the network's overlay subnets; ApprovedRoutes every routed
	// subnet the network's hosts have (approved by a token or an admin). An
	// agent refuses a peer prefix inside neither.
	Subnets        []string `json:"subnets"`
	ApprovedRoutes []string `json:"approved_routes,omitempty"`
	Interface      string   `json:"interface"`
	ListenPort     int      `json:"listen_port"`
	MTU            int      `json:"mtu,omitempty"`
	Addresses      []string `json:"addresses"`        // with the overlay's prefix length
	Routes         []string `json:"routes,omitempty"` // routed behind this host
	ForwardV4      bool     `json:"forward_v4,omitempty"`
	ForwardV6      bool     `json:"forward_v6,omitempty"`
	ClampMSS       bool     `json:"clamp_mss,omitempty"`
	// DNS, Table and FwMark are the host's own settings of those wg-quick
	// keys (an admin's wgnet set); an agent refuses a state with any of them
	// (docs/agent.md), one of an older release ignores them.
	DNS    []string `json:"dns,omitempty"`
	Table  string   `json:"table,omitempty"`
	FwMark uint32   `json:"fwmark,omitempty"`
	// Filter is the network's segmentation policy compiled for this host
	// (what it accepts over the tunnel); nil when the network has none.
	Filter *Filter `json:"filter,omitempty"`
	Peers  []Peer  `json:"peers"`
	// URLs are the controller URLs the agent may use; it adds them to those it knows.
	URLs []string `json:"urls,omitempty"`
}

// Filter is a host's compiled policy: ordered first-match rules and a
// default verdict, stateful (replies and related ICMP errors pass).
type Filter struct {
	DefaultAccept bool         `json:"default_accept"`
	Rules         []FilterRule `json:"rules"`
}

// FilterRule is one compiled rule; empty lists match anything.
type FilterRule struct {
	Accept bool     `json:"accept"`
	Src    []string `json:"src,omitempty"`
	Dst    []string `json:"dst,omitempty"`
	Proto  string   `json:"proto,omitempty"` // tcp | udp | icmp
	Ports  []string `json:"ports,omitempty"` // "443" or "8000-8080"
	Origin string   `json:"origin,omitempty"`
}

// Policy is a network's segmentation policy, as GET and PUT
// /v1/networks/{network}/policy carry it: rules in the spec's syntax
// (`allow|deny FROM -> TO [tcp|udp|icmp] [PORTS]`), groups by name.
type Policy struct {
	// Revision is the network's revision when read; a PUT with it set fails
	// with 409 when the network has changed since.
	Revision uint64        `json:"revision,omitempty"`
	Default  string        `json:"default,omitempty"` // allow (the default) or deny
	Groups   []PolicyGroup `json:"groups,omitempty"`
	Rules    []string      `json:"rules,omitempty"`
}

// PolicyGroup is a named set of hosts and prefixes: host names, tag:TAG,
// name patterns, CIDR prefixes.
type PolicyGroup struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// Peer is one peer of an AgentState.
type Peer struct {
	Name       string   `json:"name"`
	PublicKey  string   `json:"public_key"`
	Endpoint   string   `json:"endpoint,omitempty"`
	AllowedIPs []string `json:"allowed_ips"`
	Keepalive  int      `json:"keepalive,omitempty"`
}

// AgentChanges is the answer of GET /v1/agent/changes: the change log of the
// agent's network after the revision asked for and, when asked for
// (state=1) and the revision moved, the agent's desired state at Revision, so
// that one long poll brings a change to the host.
type AgentChanges struct {
	Revision uint64      `json:"revision"`
	Changes  []Change    `json:"changes"`
	State    *AgentState `json:"state,omitempty"`
	// Delta replaces State (v2, to an agent that speaks it) when the
	// controller knows what changed for the host between the revision asked
	// for and Revision.
	Delta *AgentDelta `json:"delta,omitempty"`
}

// AgentDelta (v2) is what changed in one host's desired state from revision
// From to Revision: applied onto the AgentState of revision From, it gives
// exactly the AgentState of Revision (ApplyDelta). The agent checks the
// result as it checks a whole state: a delta is never trusted more.
type AgentDelta struct {
	From     uint64 `json:"from"`
	Revision uint64 `json:"revision"`
	// Head, when any field but the peers changed, is the whole state without
	// its peers (Peers nil); nil when only peers changed.
	Head *AgentState `json:"head,omitempty"`
	// Peers are the peers added or changed, whole, sorted by name.
	Peers []Peer `json:"peers,omitempty"`
	// Removed names the peers that went.
	Removed []string `json:"removed,omitempty"`
	// URLs are the answering controller's URLs (AgentState.URLs).
	URLs []string `json:"urls,omitempty"`
	// Digest, when set (added after the first v2 release), is the Digest of
	// the state of Revision: an agent whose result differs asks for the
	// whole state.
	Digest string `json:"digest,omitempty"`
}

// ErrDeltaBase is a delta whose From is not the revision of the state it
// is applied to.
var ErrDeltaBase = errors.New("delta does not apply: its base revision is not the state's")

// ApplyDelta returns the state of d.Revision from base, the state of
// d.From; base is not changed. Peers stay sorted by name, as the controller
// sends them.
func ApplyDelta(base *AgentState, d *AgentDelta) (*AgentState, error) {
	if base == nil || base.Revision != d.From {
		have := uint64(0)
		if base != nil {
			have = base.Revision
		}
		return nil, fmt.Errorf("%w (delta %d->%d, state %d)", ErrDeltaBase, d.From, d.Revision, have)
	}
	out := *base
	if d.Head != nil {
		out = *d.Head
	}
	out.Revision, out.URLs = d.Revision, d.URLs
	removed := make(map[string]bool, len(d.Removed))
	for _, n := range d.Removed {
		removed[n] = true
	}
	byName := func(a, b Peer) int { return strings.Compare(a.Name, b.Name) }
	peers := make([]Peer, 0, len(base.Peers)+len(d.Peers))
	if !slices.IsSortedFunc(base.Peers, byName) || !slices.IsSortedFunc(d.Peers, byName) {
		// Not as a controller sends them: the slow way, same result.
		for _, p := range d.Peers {
			removed[p.Name] = true
		}
		for _, p := range base.Peers {
			if !removed[p.Name] {
				peers = append(peers, p)
			}
		}
		peers = append(peers, d.Peers...)
		slices.SortStableFunc(peers, byName)
		out.Peers = peers
		return &out, nil
	}
	// Both sorted by name: one merge walk, a sent peer replacing its namesake.
	i, j := 0, 0
	for i < len(base.Peers) || j < len(d.Peers) {
		switch {
		case j == len(d.Peers) || (i < len(base.Peers) && base.Peers[i].Name < d.Peers[j].Name):
			if !removed[base.Peers[i].Name] {
				peers = append(peers, base.Peers[i])
			}
			i++
		case i == len(base.Peers) || d.Peers[j].Name < base.Peers[i].Name:
			peers = append(peers, d.Peers[j])
			j++
		default:
			peers = append(peers, d.Peers[j])
			i, j = i+1, j+1
		}
	}
	out.Peers = peers
	return &out, nil
}

// AgentReport is the body of POST /v1/agent/status: the calling host's peers
// as its device sees them and the revision it has applied.
type AgentReport struct {
	Revision uint64       `json:"revision"`
	Time     string       `json:"time"` // RFC 3339, when the agent read its device
	Peers    []PeerStatus `json:"peers"`
}

// JoinTokenPrefix starts every join token.
const JoinTokenPrefix = "wgnet-join-"

// AdminToken is the answer to POST /v1/tokens/admin: a new admin token, shown
// once (only its hash is stored).
type AdminToken struct {
	Token string `json:"token"`
	ID    string `json:"id"`
}

// TokenInfo describes a stored admin or join token, never its secret.
type TokenInfo struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"` // admin | enroll
	Network string `json:"network,omitempty"`
	Host    string `json:"host,omitempty"`
	Uses    int    `json:"uses,omitempty"`    // uses left (join tokens)
	Expires string `json:"expires,omitempty"` // RFC 3339; "" never
}

// Tokens is the answer to GET /v1/tokens.
type Tokens struct {
	Tokens []TokenInfo `json:"tokens"`
}

// JoinToken is what a join token carries: where the controller is (every URL
// it is reachable at), how to trust it (its CA pin) and the secret that the
// controller knows only the hash of.
type JoinToken struct {
	URLs   []string `json:"urls"`
	CAHash string   `json:"ca"`
	Secret string   `json:"secret"`
}

// String encodes t as one copy-pasteable word.
func (t JoinToken) String() string {
	b, _ := json.Marshal(t)
	return JoinTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseJoinToken decodes a join token and checks its parts.
func ParseJoinToken(s string) (JoinToken, error) {
	var t JoinToken
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), JoinTokenPrefix)
	if !ok {
		return t, fmt.Errorf("join token: does not start with %s", JoinTokenPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return t, fmt.Errorf("join token: %w", err)
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("join token: %w", err)
	}
	if t.CAHash, err = ParseCAHash(t.CAHash); err != nil {
		return t, fmt.Errorf("join token: %w", err)
	}
	if len(t.URLs) == 0 || t.Secret == "" {
		return t, errors.New("join token: no controller URL or no secret")
	}
	return t, nil
}
