// Package store owns the controller's durable state behind one Store interface:
// networks, hosts (public data only: a Host has no field for a private key),
// each network's dense revision and change log, and tokens kept as SHA-256
// hashes. Every change increments its network's revision in the same
// transaction that makes it, and address allocation and token use are checked
// and done in one transaction, so that several controller processes on one
// database (a later PostgreSQL implementation) keep the same guarantees.
//
// Implementations live in sub-packages (sqlitestore) and all pass the one
// conformance suite in storetest. This package imports ipam (the allocation
// rules) and wgkey only; never spec, compile or the HTTP layer.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/wgnet/wgnet/internal/ipam"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Errors every implementation returns (wrapped), so that the API can map them
// to status codes without knowing the database.
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrConflict     = errors.New("conflict") // e.g. an address already taken
	ErrTokenUsed    = errors.New("token already used")
	ErrTokenExpired = errors.New("token expired")
	ErrInvalid      = errors.New("invalid")
)

// Network is one overlay network of the controller.
type Network struct {
	Name     string
	Subnets  []netip.Prefix // at most one IPv4 and one IPv6 subnet
	Topology string         // "hub" or "mesh"
	Hub      string         // the hub's host name (hub topology), "" until one is added
	// Revision is the network's dense revision: 1 at creation, +1 per change.
	Revision uint64
	// Hosts is how many hosts the network has, kept by the store in the
	// transaction of each change (so /metrics need not read the hosts).
	Hosts int
	// Policy is the network's segmentation policy in the controller's
	// encoding, opaque to the store; empty for none. SetPolicy changes it.
	Policy []byte
}

// Host is one host of a network: only what others may know of it.
type Host struct {
	Name      string
	PublicKey wgkey.Key
	Addresses []netip.Addr // one per subnet family; allocated when left out
	Endpoint  string       // "host:port", "" for a host that can't be dialled
	Routes    []netip.Prefix
	Keepalive int // seconds, 0 = none
	// Tags name the host in policy groups (sorted, no repeats).
	Tags []string
	// PendingRoutes are routes the host asked for when it joined that its
	// token did not allow: not routed (not in Routes) until an admin
	// approves one (SetHost adding it to Routes) or rejects it (removing it).
	PendingRoutes []netip.Prefix
	// Hub says the host is its network's hub; AddHost with Hub set makes it
	// the hub (hub topology only).
	Hub bool
	Settings
}

// Settings are a host's own settings beyond its place in the network: the
// fields of a spec's host for wg-quick parity (issue 10), kept as the spec
// has them (schema 6). The zero value is what a host had before they were
// kept, and compiles as it did then.
type Settings struct {
	// AddressBits holds the prefix length of an address given with its own
	// ("10.8.0.2/32"); an address without one takes its subnet's.
	AddressBits map[netip.Addr]int
	// AddressElsewhere (assign_address: false): the host's config has no
	// Address; something else assigns it.
	AddressElsewhere bool
	// RandomPort (listen_port: random): wg picks the port (a host nobody dials).
	RandomPort bool
	MTU        int      // 0: the network's; -1: automatic (spec.MTUAuto)
	DNS        []string // resolvers and search domains
	Table      string   // wg-quick's Table: "" (auto), off, main, a number or a name
	FwMark     uint32   // 0: none
	// External: a peer wgnet writes no config for (a VPN provider's server).
	External bool
	// FullTunnel are the default routes a spoke sends through the hub.
	FullTunnel []netip.Prefix
}

// MarkHub sets every host's Hub flag from n.Hub; implementations call it on
// what they read and hand to a Validate.
func MarkHub(n Network, hosts []Host) {
	for i := range hosts {
		hosts[i].Hub = n.Hub != "" && hosts[i].Name == n.Hub
	}
}

// ChangeKind says what one revision did.
type ChangeKind string

// The kinds of change in the log. Each names at most one host: the log says
// what changed, and a follower reads the host itself.
const (
	NetworkCreated ChangeKind = "network-created"
	HostAdded      ChangeKind = "host-added"
	HostChanged    ChangeKind = "host-changed"
	HostRemoved    ChangeKind = "host-removed"
	PolicyChanged  ChangeKind = "policy-changed"
)

// Change is one entry of a network's change log.
type Change struct {
	Revision uint64
	Kind     ChangeKind
	Host     string // "" for network-wide changes
	Time     time.Time
}

// TokenKind separates admin credentials from enrollment tokens.
type TokenKind string

// Token kinds.
const (
	AdminToken  TokenKind = "admin"
	EnrollToken TokenKind = "enroll"
	// AgentToken is one host's agent credential, issued when the host enrolls:
	// Network and Host say whose it is. It is not consumed and goes with its
	// host (RemoveHost) or network.
	AgentToken TokenKind = "agent"
)

// TokenHash is the SHA-256 of a token's secret; the secret itself is never stored.
type TokenHash [32]byte

// HashToken returns the hash a token secret is stored and looked up by.
func HashToken(secret string) TokenHash { return sha256.Sum256([]byte(secret)) }

// Token is a stored credential.
type Token struct {
	Hash    TokenHash
	Kind    TokenKind
	Network string    // "" for an admin token
	Host    string    // enrollment bound to a host name, "" for any
	Uses    int       // uses left; 0 for an admin token (not consumed)
	Expires time.Time // zero = never
	// Routes are the subnets a host joining with the token may claim as routed
	// behind it (each route it asks for must lie inside one of them).
	Routes []netip.Prefix
}

// ID names a token in the audit log and the logs without revealing it: the
// first 6 bytes of its hash, in hex (the hash of a 256-bit secret; knowing it
// does not help to find the secret).
func (h TokenHash) ID() string { return "tok-" + hex.EncodeToString(h[:6]) }

// WithActor returns ctx carrying who makes the changes done with it ("admin
// tok-1a2b3c4d5e6f", "host s3 (join token tok-...)"); stores record it in the
// audit log, in the transaction of the change. Never a secret.
func WithActor(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, actorKey{}, who)
}

type actorKey struct{}

// ActorOf returns who ctx says makes a change, "unknown" when nobody said.
func ActorOf(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "unknown"
}

// AuditEntry is one line of the audit log: who did what, when. Entries are
// written in the transaction of the change they record and outlive the
// network they name.
type AuditEntry struct {
	Seq      uint64 // increasing; the order entries were committed in, per store
	Time     time.Time
	Actor    string
	Network  string // "" for changes outside a network
	Revision uint64 // the network's revision after the change, 0 for none
	Action   string // network-created, host-added, token-created, ...
	Subject  string // the host or token the action was on
}

// Audit actions besides the change kinds.
const (
	NetworkDeleted = "network-deleted"
	TokenCreated   = "token-created"
	TokenRevoked   = "token-revoked"
	HostEnrolled   = "host-enrolled"
	HostAdopted    = "host-adopted"
)

// HostStatus is what a host's agent last reported.
type HostStatus struct {
	Host     string
	Time     time.Time // when the agent sent it (last seen)
	Revision uint64    // the network revision the host has applied
	Peers    []PeerStatus
}

// PeerStatus is one peer of a reporting host, as its device sees it.
type PeerStatus struct {
	PublicKey     wgkey.Key
	Endpoint      string // the endpoint the device last heard the peer from
	LastHandshake time.Time
	RxBytes       uint64
	TxBytes       uint64
	// Unresolved is the peer's endpoint host name when it has never resolved
	// on the reporting host, which configured the peer without an endpoint
	// ("": not so); ResolveError and UnresolvedSince say why and since when.
	Unresolved      string
	ResolveError    string
	UnresolvedSince time.Time
}

// StatusReport is one host's report in a batch.
type StatusReport struct {
	Network string
	Status  HostStatus
}

// Validate is called by AddHost, SetHost and Enroll inside the writing
// transaction with the network as it would be after the change and the hosts
// the change can conflict with beyond what the store itself enforces (unique
// names, case-insensitively; unique public keys; unique addresses): the
// changed host, the hub and every host with routed subnets, sorted by name. An
// error aborts the change. The controller passes spec validation here, so
// that what is stored always compiles, at a cost that grows with the routed
// hosts, not with the network.
type Validate func(n Network, hosts []Host) error

// HostChanges is a patch for SetHost: nil pointers leave a field unchanged.
type HostChanges struct {
	PublicKey *wgkey.Key
	Endpoint  *string
	Addresses []netip.Addr // when not empty, replace the addresses of their families
	// ReplaceRoutes replaces the host's routes with Routes; otherwise Routes are
	// added (once). RemoveRoutes are removed after that; removing a route the
	// host doesn't have is ErrInvalid. Done in the writing transaction, so two
	// concurrent route edits of one host both count.
	ReplaceRoutes bool
	Routes        []netip.Prefix
	RemoveRoutes  []netip.Prefix
	Keepalive     *int
	Hub           bool // make the host the hub
	// AddTags and RemoveTags edit the host's tags in the writing transaction;
	// removing a tag the host doesn't have is not an error.
	AddTags, RemoveTags []string
	// AddressBits are the prefix lengths of those of Addresses given with
	// one; an address of Addresses without one takes its subnet's.
	AddressBits map[netip.Addr]int
	// The host's settings (Settings); nil leaves one unchanged, an empty
	// list removes one.
	AddressElsewhere, RandomPort, External *bool
	MTU                                    *int
	DNS                                    *[]string
	Table                                  *string
	FwMark                                 *uint32
	FullTunnel                             *[]netip.Prefix
}

// applySettings applies the settings part of c to h.
func (c HostChanges) applySettings(h *Host) {
	set := func(to *bool, v *bool) {
		if v != nil {
			*to = *v
		}
	}
	set(&h.AddressElsewhere, c.AddressElsewhere)
	set(&h.RandomPort, c.RandomPort)
	set(&h.External, c.External)
	if c.MTU != nil {
		h.MTU = *c.MTU
	}
	if c.DNS != nil {
		h.DNS = slices.Clone(*c.DNS)
	}
	if c.Table != nil {
		h.Table = *c.Table
	}
	if c.FwMark != nil {
		h.FwMark = *c.FwMark
	}
	if c.FullTunnel != nil {
		h.FullTunnel = slices.Clone(*c.FullTunnel)
	}
	if len(c.Addresses) > 0 {
		bits := maps.Clone(h.AddressBits)
		for _, a := range c.Addresses {
			delete(bits, a)
			if b, ok := c.AddressBits[a]; ok {
				if bits == nil {
					bits = map[netip.Addr]int{}
				}
				bits[a] = b
			}
		}
		h.AddressBits = bits
	}
	h.AddressBits = KeepBits(h.AddressBits, h.Addresses)
}

// KeepBits returns bits without the addresses not in addrs (nil when none
// is left).
func KeepBits(bits map[netip.Addr]int, addrs []netip.Addr) map[netip.Addr]int {
	var out map[netip.Addr]int
	for a, b := range bits {
		if slices.Contains(addrs, a) {
			if out == nil {
				out = map[netip.Addr]int{}
			}
			out[a] = b
		}
	}
	return out
}

// EditRoutes applies the route part of c to routes.
func (c HostChanges) EditRoutes(routes []netip.Prefix) ([]netip.Prefix, error) {
	out := slices.Clone(routes)
	if c.ReplaceRoutes {
		out = nil
	}
	for _, p := range c.Routes {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, p := range c.RemoveRoutes {
		i := slices.Index(out, p)
		if i < 0 {
			return nil, fmt.Errorf("remove route %s: %w: the host has no such route", p, ErrInvalid)
		}
		out = slices.Delete(out, i, i+1)
	}
	return out, nil
}

// Adopted decides an enrollment with a token bound to a host name: stored
// are the network's hosts of that name (none or one). A host already there
// (imported with its public key) is adopted when h joins with the same key,
// and refused with another; none means h is new (nil).
func Adopted(stored []Host, h Host) (*Host, error) {
	if len(stored) == 0 {
		return nil, nil
	}
	if stored[0].PublicKey != h.PublicKey {
		return nil, fmt.Errorf("host %s: %w: it is in the network with another public key; join with its own key (--key-file)", stored[0].Name, ErrInvalid)
	}
	return &stored[0], nil
}

// EditTags returns tags with add added and remove removed, sorted, each once.
func EditTags(tags, add, remove []string) []string {
	out := slices.Clone(tags)
	out = append(out, add...)
	out = slices.DeleteFunc(out, func(t string) bool { return t == "" || slices.Contains(remove, t) })
	slices.Sort(out)
	return slices.Compact(out)
}

// Store is the controller's state. All methods are safe for concurrent use, by
// one process or (for a shared database) several.
type Store interface {
	// CreateNetwork stores n at revision 1 (n.Revision is ignored).
	CreateNetwork(ctx context.Context, n Network) (Network, error)
	Network(ctx context.Context, name string) (Network, error)
	Networks(ctx context.Context) ([]Network, error)
	// DeleteNetwork removes the network, its hosts, log and tokens.
	DeleteNetwork(ctx context.Context, name string) error

	// AddHost adds h, allocating (ipam.Next) an address in every subnet family
	// h has none in, all in one transaction; in a hub network without a hub, h
	// becomes the hub. It returns the host as stored and the new revision.
	AddHost(ctx context.Context, network string, h Host, v Validate) (Host, uint64, error)
	SetHost(ctx context.Context, network, name string, c HostChanges, v Validate) (Host, uint64, error)
	// RemoveHost removes a host; the hub of a network with other hosts can't be
	// removed until another host is made the hub.
	RemoveHost(ctx context.Context, network, name string) (uint64, error)
	// SetPolicy replaces the network's policy (Network.Policy) as one change
	// (kind PolicyChanged) and returns the new revision. With ifRevision not
	// 0, the network must still be at that revision (ErrConflict otherwise):
	// an editor that read the policy at ifRevision overwrites nobody's edit.
	SetPolicy(ctx context.Context, network string, policy []byte, ifRevision uint64) (uint64, error)
	// Hosts returns the network and its hosts (sorted by name) as of one revision.
	Hosts(ctx context.Context, network string) (Network, []Host, error)
	// Changes returns the log entries after revision since, oldest first, at most limit (0: all).
	Changes(ctx context.Context, network string, since uint64, limit int) ([]Change, error)
	// HostsAndLog is Hosts and the log's entries after revision since (the
	// newest last of them when last > 0; oldest first) read in one
	// transaction: both at the network's revision, so that the log's last
	// entry, when the revision is above since, is the one at n.Revision and
	// no entry is of a later revision than the hosts. Hosts then Changes, two
	// reads, can disagree: a change committed between them.
	HostsAndLog(ctx context.Context, network string, since uint64, last int) (Network, []Host, []Change, error)

	// CreateToken stores a token by its hash.
	CreateToken(ctx context.Context, t Token) error
	// AdminTokens returns the hashes of the admin tokens, for the caller to
	// compare in constant time.
	AdminTokens(ctx context.Context) ([]TokenHash, error)
	// FirstAdminToken stores h as an admin token only if the store has none,
	// and says whether it did: of several controllers starting at once on an
	// empty database, exactly one makes (and prints) the admin token.
	FirstAdminToken(ctx context.Context, h TokenHash) (bool, error)
	// RevokeToken deletes an admin or enrollment token (ErrNotFound when there
	// is none of those kinds with that hash; an agent credential goes with its
	// host). The last admin token is not revoked (ErrInvalid), so the
	// controller never locks its admins out: create the next one first.
	RevokeToken(ctx context.Context, h TokenHash) error
	// LookupToken returns a stored token without using it (ErrNotFound).
	LookupToken(ctx context.Context, h TokenHash) (Token, error)
	// UseToken checks and consumes one use of an enrollment token in one
	// transaction: ErrNotFound, ErrTokenExpired or ErrTokenUsed otherwise.
	UseToken(ctx context.Context, h TokenHash, now time.Time) (Token, error)
	// Enroll uses one use of an enrollment token and adds h to the token's
	// network (as AddHost, never as the hub) in one transaction: both happen or
	// neither. A token bound to a host name admits only that name (ErrInvalid).
	// When that host is already in the network (adopted: imported with its
	// public key), it joins with the same key and nothing is added: the
	// revision stays, the audit says host-adopted; another key is ErrInvalid.
	// When cred is not the zero hash it is stored, in the same transaction, as
	// the new host's AgentToken (LookupToken finds it; RemoveHost removes it).
	Enroll(ctx context.Context, hash TokenHash, now time.Time, h Host, v Validate, cred TokenHash) (Token, Host, uint64, error)

	// WaitRevision returns the network's revision as soon as it is above
	// after: at once when it already is, else when a change commits (by this
	// process or, for a shared database, by another controller: SQLite wakes
	// in-process and polls the file for other processes, PostgreSQL uses
	// LISTEN/NOTIFY). It returns ErrNotFound for a network that does not exist
	// or is deleted while waiting, and ctx's error (with the revision last
	// seen) when ctx is done first. Agents' long polls of the change log wait
	// here; many waiters on one network all wake on one change.
	WaitRevision(ctx context.Context, network string, after uint64) (uint64, error)

	// Audit returns the audit log's entries after seq, oldest first, at most
	// limit (0: all). Every change above writes its entry, with ActorOf(ctx), in
	// its own transaction.
	Audit(ctx context.Context, since uint64, limit int) ([]AuditEntry, error)

	// ReportStatus stores a batch of agents' reports in one transaction (agents
	// report often; a controller gathers them and writes them together). A
	// report replaces the host's previous one unless it is older; reports of
	// hosts that are not (or no longer) in the store are skipped. It returns how
	// many were stored. A report is not a change: no revision, no audit entry.
	ReportStatus(ctx context.Context, batch []StatusReport) (int, error)
	// Status returns the last report of each host of a network that has one,
	// sorted by host name.
	Status(ctx context.Context, network string) ([]HostStatus, error)

	// Tokens returns every stored token (admin and enrollment), sorted by
	// hash: what `controller migrate` carries over.
	Tokens(ctx context.Context) ([]Token, error)

	// CA returns the CA stored for every controller of the database
	// (ErrNotFound when none is). PutCA stores ca unless one is stored
	// already, and returns the one stored: when several controllers start at
	// once, all use the first one's.
	CA(ctx context.Context) (StoredCA, error)
	PutCA(ctx context.Context, ca StoredCA) (StoredCA, error)

	// Health checks that the database answers and says whether its schema
	// is one this build runs against.
	Health(ctx context.Context) (Health, error)

	Close() error
}

// StoredCA is the controllers' CA as a store keeps it: the certificate (PEM)
// and its private key sealed by the controller with a key every controller is
// given; a store never sees the CA key in clear.
type StoredCA struct {
	CertPEM   []byte
	SealedKey []byte
}

// Health is what a store says of itself for /healthz.
type Health struct {
	Backend string // "sqlite", "postgres"
	// Schema is the database's schema version, Code the newest this build
	// knows; Current says this build runs against that schema (equal, or a
	// newer schema whose migrations kept it compatible: expand before contract).
	Schema, Code int
	Current      bool
}

// Taken reports whether an address is used in the network; an implementation
// answers from its unique index, without reading the other addresses.
type Taken func(a netip.Addr) (bool, error)

// AllocateFrom is Allocate for a store that keeps, per subnet, a floor: an
// address below which every allocatable address of the subnet is taken (the
// invalid Addr when it knows none). It checks the addresses h has with taken
// and allocates the missing ones by probing upward from the floor, so an add
// costs a few index lookups however many hosts there are, and gives the
// address ipam.Next would: the lowest free one. It raises floors past what it
// allocated; a store lowers a floor when it frees an address below it.
func AllocateFrom(subnets []netip.Prefix, floors map[netip.Prefix]netip.Addr, taken Taken, h *Host) error {
	h.Addresses = slices.Clone(h.Addresses)
	for _, a := range h.Addresses {
		sub, ok := subnetOf(subnets, a)
		if !ok {
			return fmt.Errorf("address %s: %w: in no subnet of the network", a, ErrInvalid)
		}
		if err := ipam.Check(sub, a); err != nil {
			return fmt.Errorf("address %s: %w: %v", a, ErrInvalid, err)
		}
		if t, err := taken(a); err != nil {
			return err
		} else if t {
			return fmt.Errorf("address %s: %w: taken", a, ErrConflict)
		}
	}
	for _, sub := range subnets {
		if slices.ContainsFunc(h.Addresses, func(a netip.Addr) bool { return a.Is4() == sub.Addr().Is4() }) {
			continue
		}
		a, err := nextFree(sub, floors[sub], taken)
		if err != nil {
			return err
		}
		h.Addresses = append(h.Addresses, a)
		floors[sub] = a.Next()
	}
	return nil
}

// nextFree is ipam.Next's walk started at floor instead of the subnet's
// first address, asking taken instead of a set.
func nextFree(sub netip.Prefix, floor netip.Addr, taken Taken) (netip.Addr, error) {
	sub = sub.Masked()
	a := sub.Addr().Next()
	if ipam.PointToPoint(sub) {
		a = sub.Addr()
	}
	if floor.IsValid() && sub.Contains(floor) && a.Less(floor) {
		a = floor
	}
	bcast, hasBcast := ipam.Broadcast(sub)
	for ; a.IsValid() && sub.Contains(a) && !(hasBcast && a == bcast); a = a.Next() {
		t, err := taken(a)
		if err != nil {
			return netip.Addr{}, err
		}
		if !t {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("allocate: %w: allocate address in %s: %v", ErrConflict, sub, ipam.ErrFull)
}

func subnetOf(subnets []netip.Prefix, a netip.Addr) (netip.Prefix, bool) {
	for _, s := range subnets {
		if s.Contains(a) {
			return s, true
		}
	}
	return netip.Prefix{}, false
}

// ValidNetwork checks what a store needs of a new network (the controller runs
// spec validation as well).
func ValidNetwork(n Network) error {
	if n.Name == "" {
		return fmt.Errorf("network: %w: empty name", ErrInvalid)
	}
	if n.Topology != "hub" && n.Topology != "mesh" {
		return fmt.Errorf("network %s: %w: topology %q", n.Name, ErrInvalid, n.Topology)
	}
	if len(n.Subnets) == 0 {
		return fmt.Errorf("network %s: %w: no subnet", n.Name, ErrInvalid)
	}
	return nil
}

// Floors is one writing transaction's access to a network's allocation
// floors (AllocateFrom) and addresses, in a store's own SQL.
type Floors struct {
	// Read returns the stored floors: subnet → address, as text.
	Read func() (map[string]string, error)
	// Set stores the floor of one subnet.
	Set func(subnet, addr string) error
	// Taken reports an address used by another host than the one changed.
	Taken Taken
}

func (f Floors) read() (map[netip.Prefix]netip.Addr, error) {
	m, err := f.Read()
	if err != nil {
		return nil, err
	}
	floors := make(map[netip.Prefix]netip.Addr, len(m))
	for sub, addr := range m {
		p, err1 := netip.ParsePrefix(sub)
		a, err2 := netip.ParseAddr(addr)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("stored allocation floor: %w", err)
		}
		floors[p] = a
	}
	return floors, nil
}

// Allocate checks h's addresses and allocates the missing ones in n
// (AllocateFrom): each probe one lookup through f.Taken, each subnet from its
// stored floor; the floors it raised are stored.
func Allocate(n Network, f Floors, h *Host) error {
	floors, err := f.read()
	if err != nil {
		return err
	}
	before := maps.Clone(floors)
	if err := AllocateFrom(n.Subnets, floors, f.Taken, h); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	for sub, a := range floors {
		if a != before[sub] {
			if err := f.Set(sub.String(), a.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// LowerFloors lowers the floor of each freed address's subnet to it.
func LowerFloors(n Network, f Floors, freed []netip.Addr) error {
	floors, err := f.read()
	if err != nil {
		return err
	}
	for _, a := range freed {
		for _, sub := range n.Subnets {
			if fl, ok := floors[sub]; ok && sub.Contains(a) && a.Less(fl) {
				floors[sub] = a
				if err := f.Set(sub.String(), a.String()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Apply returns h with c applied in n: key, endpoint, routes, keepalive, the
// hub (n.Hub is set), and addresses: those c gives are checked, those it asks
// for allocated, and the floors of those it frees lowered, through f. The
// caller checks the new key's uniqueness and stores the result.
func (c HostChanges) Apply(n *Network, f Floors, h Host) (Host, error) {
	old := h.Addresses
	if c.PublicKey != nil {
		h.PublicKey = *c.PublicKey
	}
	if c.Endpoint != nil {
		h.Endpoint = *c.Endpoint
	}
	// Removing a pending route rejects it; adding one approves it.
	c.RemoveRoutes = slices.DeleteFunc(slices.Clone(c.RemoveRoutes), func(p netip.Prefix) bool {
		i := slices.Index(h.PendingRoutes, p)
		if i >= 0 {
			h.PendingRoutes = slices.Delete(slices.Clone(h.PendingRoutes), i, i+1)
		}
		return i >= 0
	})
	var err error
	if h.Routes, err = c.EditRoutes(h.Routes); err != nil {
		return h, fmt.Errorf("host %s: %w", h.Name, err)
	}
	h.PendingRoutes = slices.DeleteFunc(slices.Clone(h.PendingRoutes), func(p netip.Prefix) bool { return slices.Contains(h.Routes, p) })
	if c.Keepalive != nil {
		h.Keepalive = *c.Keepalive
	}
	h.Tags = EditTags(h.Tags, c.AddTags, c.RemoveTags)
	if len(c.Addresses) > 0 {
		keep := slices.DeleteFunc(slices.Clone(old), func(a netip.Addr) bool {
			return slices.ContainsFunc(c.Addresses, func(b netip.Addr) bool { return a.Is4() == b.Is4() })
		})
		freed := slices.DeleteFunc(slices.Clone(old), func(a netip.Addr) bool { return slices.Contains(keep, a) })
		h.Addresses = append(slices.Clone(c.Addresses), keep...)
		if err := Allocate(*n, f, &h); err != nil {
			return h, err
		}
		slices.SortFunc(h.Addresses, func(a, b netip.Addr) int { return a.Compare(b) })
		if err := LowerFloors(*n, f, freed); err != nil {
			return h, err
		}
	}
	c.applySettings(&h)
	if c.Hub {
		if n.Topology != "hub" {
			return h, fmt.Errorf("host %s: %w: hub in a mesh network", h.Name, ErrInvalid)
		}
		n.Hub = h.Name
	}
	h.Hub = n.Hub == h.Name
	return h, nil
}
