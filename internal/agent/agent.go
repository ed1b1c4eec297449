// Package agent is `wgnet agent`: a host that follows its network on a
// controller. It joins with a token (its key pair made here; the private key
// never leaves the host), pins the controller's CA from the token, keeps its
// agent credential and the last good desired state on disk (0600 in a 0700
// directory), applies each desired state through a DataPlane (on a real host
// the reconcile engine of `wgnet up` and `sync`), follows the change log by
// long poll, reports its peers, and keeps the network as it is while no
// controller answers, catching up when one does.
//
// Guardrails: the controller is not root on the host. The agent runs nothing
// the controller sends (no hooks, no commands: the wire type has none),
// refuses prefixes outside the network's subnets and approved routes and any
// default route, and never asks for a default route itself (Guard,
// CheckOwnRoutes).
//
// It imports api, atomicfile, client, device, intent, trust, up, wgconf and
// wgkey; never the controller, a store or the lab.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// DefaultPort is the port an agent declares when it has no endpoint of its
// own: the controller makes its endpoint the address it sees with this port.
const DefaultPort = 51820

// Options configure an agent. The zero value of each field is documented.
type Options struct {
	// Dir holds the agent's files; "": DefaultDir.
	Dir string
	// Plane applies desired states; nil: &UpPlane{} (the real host).
	Plane DataPlane
	// Log receives what the agent does; nil: discard. Never a key or credential.
	Log *slog.Logger
	// Transport returns the HTTPS transport for a CA pin; nil:
	// client.Transport. Tests wrap it to record every request.
	Transport func(caHash string) (http.RoundTripper, error)
	// Wait is how long one long poll of the change log waits; 0: 30 s.
	Wait time.Duration
	// ReportEvery is how often the agent reports its peers; 0: 10 s.
	ReportEvery time.Duration
	// ResolveEvery is how often the applied state is reconciled again, so
	// that endpoint host names are resolved again; 0: 5 minutes.
	ResolveEvery time.Duration
	// SnapshotEvery is how often the agent takes its whole desired state
	// though deltas keep it current (API v2); 0: 10 minutes.
	SnapshotEvery time.Duration
	// BackoffMin and BackoffMax bound the wait between failed attempts
	// (full jitter, doubling); 0: 250 ms and 30 s.
	BackoffMin, BackoffMax time.Duration
	// SafetyWindow: a change that altered the path to every controller is
	// rolled back when no controller answers within it (and one answered just
	// before it); 0: 2 minutes; negative: never.
	SafetyWindow time.Duration
	// Registry receives the agent's metrics; nil: a registry of its own (Registry()).
	Registry *prometheus.Registry
	// OnApplied, when set, is called with each revision the agent has applied
	// (for tests and benchmarks that time a change reaching every host).
	OnApplied func(revision uint64)
	// APIVersions are the API versions the agent says it speaks; nil:
	// api.Versions. Tests and benchmarks give []string{api.Version} to
	// follow as an agent one release older does (whole states, no deltas).
	APIVersions []string
	// LocalAddrs returns the host's addresses, against which the long poll's
	// local address is checked (a poll from an address the host lost is sent
	// again at once); nil: the host's interfaces' addresses.
	LocalAddrs func() ([]netip.Addr, error)
	// AddrChanges subscribes to the host's address changes until ctx ends:
	// a value on the channel when an address is removed (the long poll's is
	// then checked), the channel closed when the subscription ends; nil: a
	// netlink subscription on Linux, none elsewhere. Without one (an error),
	// the address is checked every AddrPollEvery.
	AddrChanges func(ctx context.Context) (<-chan struct{}, error)
	// AddrPollEvery is how often the long poll's local address is checked
	// when the host's address changes can't be followed; 0: 1 s.
	AddrPollEvery time.Duration
}

func (o *Options) defaults() {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Plane == nil {
		o.Plane = &UpPlane{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Transport == nil {
		o.Transport = func(caHash string) (http.RoundTripper, error) { return client.Transport(caHash) }
	}
	if o.Wait == 0 {
		o.Wait = 30 * time.Second
	}
	if o.ReportEvery == 0 {
		o.ReportEvery = 10 * time.Second
	}
	if o.ResolveEvery == 0 {
		o.ResolveEvery = 5 * time.Minute
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = 10 * time.Minute
	}
	if o.BackoffMin == 0 {
		o.BackoffMin = 250 * time.Millisecond
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = 30 * time.Second
	}
	if o.SafetyWindow == 0 {
		o.SafetyWindow = 2 * time.Minute
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.LocalAddrs == nil {
		o.LocalAddrs = hostAddrs
	}
	if o.AddrChanges == nil {
		o.AddrChanges = hostAddrChanges
	}
	if o.AddrPollEvery == 0 {
		o.AddrPollEvery = time.Second
	}
}

// hostAddrs is the addresses of the host's interfaces.
func hostAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// JoinRequest is what `wgnet agent join` is given.
type JoinRequest struct {
	Token    string // the join token (wgnet token create)
	Name     string // the host's name in the network
	Endpoint string // "host:port" others reach it at; "": the address the controller sees, port DefaultPort
	Routes   []netip.Prefix
	// KeyFile is an existing private key file to use (an adopted host); "":
	// the agent makes a key pair and keeps the private key in Dir/KeyFile.
	KeyFile   string
	Interface string // "": the controller's name for it
	// Allow are the settings the host's operator lets the controller set.
	Allow Allowed
}

// ErrJoined is a join in a directory that already has an agent.
var ErrJoined = errors.New("already joined (wgnet agent run restarts it; wgnet agent leave first to join again)")

// Join enrolls this host with a join token and stores its config; Run then
// brings the interface up and follows the network. The private key is made
// (or read) here and only its public half is sent.
func Join(ctx context.Context, req JoinRequest, opts Options) (*Agent, error) {
	opts.defaults()
	if _, err := LoadConfig(opts.Dir); err == nil {
		return nil, fmt.Errorf("%s: %w", opts.Dir, ErrJoined)
	}
	jt, err := api.ParseJoinToken(req.Token)
	if err != nil {
		return nil, err
	}
	if err := CheckOwnRoutes(req.Routes); err != nil {
		return nil, err
	}
	if err := prepareDir(opts.Dir); err != nil {
		return nil, err
	}
	keyFile, priv, err := hostKey(opts.Dir, req.KeyFile)
	if err != nil {
		return nil, err
	}
	h := api.Host{Name: req.Name, PublicKey: priv.Public().String(), Endpoint: req.Endpoint}
	if h.Endpoint == "" {
		h.EndpointPort = DefaultPort
	}
	for _, r := range req.Routes {
		h.Routes = append(h.Routes, r.String())
	}
	rt, err := opts.Transport(jt.CAHash)
	if err != nil {
		return nil, err
	}
	e, err := client.EnrollVia(ctx, req.Token, h, rt)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if e.Credential == "" {
		return nil, errors.New("join: the controller gave no agent credential (a controller older than issue 15?)")
	}
	cfg := Config{Network: e.Network, Host: e.Host.Name, Credential: e.Credential, URLs: jt.URLs, CAHash: jt.CAHash,
		KeyFile: keyFile, Interface: req.Interface, Allow: req.Allow}
	if err := writeJSON(filepath.Join(opts.Dir, ConfigFile), cfg, true); err != nil {
		return nil, err
	}
	opts.Log.Info("joined", "network", e.Network, "host", e.Host.Name, "addresses", e.Host.Addresses, "endpoint", e.Host.Endpoint, "revision", e.Revision)
	if len(e.Host.PendingRoutes) > 0 {
		opts.Log.Warn("routes beyond the join token's wait for an admin's approval (wgnet set HOST --route P --controller ...)",
			"host", e.Host.Name, "routes", e.Host.PendingRoutes)
	}
	return New(opts)
}

// hostKey returns the key file to use and its key: the one given (an adopted
// host's, which must be trusted), or a new key pair whose private half is
// written 0600 into dir.
func hostKey(dir, given string) (string, wgkey.Private, error) {
	if given != "" {
		k, err := readKey(given)
		if err != nil {
			return "", k, err
		}
		abs, err := filepath.Abs(given)
		return abs, k, err
	}
	path := filepath.Join(dir, KeyFile)
	if k, err := readKey(path); err == nil {
		return path, k, nil // a join that failed after making it
	}
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		return "", k, err
	}
	if err := atomicfile.Write(path, []byte(k.Base64()+"\n"), 0o600, 0o700); err != nil {
		return "", k, err
	}
	return path, k, nil
}

// readKey reads a private key file as up does (trusted path, no symbolic
// link), and refuses one others may read.
func readKey(path string) (wgkey.Private, error) {
	k, err := up.ReadKeyFile(path)
	if err != nil {
		return k, err
	}
	if fi, err := os.Stat(path); err != nil {
		return k, err
	} else if fi.Mode().Perm()&0o077 != 0 {
		return k, fmt.Errorf("%s: a private key must not be readable by others (mode %04o; chmod 600)", path, fi.Mode().Perm())
	}
	return k, nil
}

// Agent is one joined host following its network.
type Agent struct {
	opts Options
	cfg  Config
	pub  wgkey.Key
	m    *metrics

	// applying is held (a token in it) while a desired state is read, applied
	// to the data plane and recorded: by apply, the periodic reconcile and the
	// safety rollback, so that none puts an older state back over a newer
	// one. Taken before mu, never while holding mu. A channel, not a mutex,
	// so that waiting for it can end with a context.
	applying chan struct{}

	mu sync.Mutex // guards the fields below
	// applied is the last good state, applied; nil before the first.
	applied *held
	// followed is the revision of the change log the agent has seen up to.
	followed uint64
	urls     []string // known controller URLs, the token's first
	next     int      // the URL to try next
	clients  map[string]*client.Client
	lastOK   time.Time // the last answer of a controller
	// guard is a change under the safety window (nil: none).
	guard *safety
	// rolledBack is the revision a safety window rolled back, not applied again.
	rolledBack uint64
	// unresolved are the peers configured without an endpoint at the last
	// apply, their host name never resolved, with since when.
	unresolved []UnresolvedPeer
	// pollLocal is the local address of the long poll in flight (invalid:
	// none, or not known yet); pollCancel stops it.
	pollLocal  netip.Addr
	pollCancel context.CancelCauseFunc
	// summed is the last state a delta made, with its digest (digest.go).
	summed summed
	// addrLost says the host lost an address while no poll's local address
	// was known: the next poll's connection (perhaps an idle one from that
	// address) is checked when it is known.
	addrLost bool
	// up says the interface was reconciled by this process at least once.
	up   bool
	kick chan struct{} // asks for a report now
	// made is the last intent made of a state (heldIntent's memo); its
	// peers are patched in place into the next, under the apply lock.
	made memo
	// cache is what the cache files hold (journal.go).
	cache cacheFiles
}

// intent is Intent(st) for this agent, made after the last one: only the
// peers that differ from the state before are judged, and patched into its
// intent in place (heldIntent). The apply lock is held.
func (a *Agent) intent(st *held) (*intent.Host, error) {
	a.mu.Lock()
	prev := a.made
	a.mu.Unlock()
	h, err := heldIntent(prev, st, a.cfg.KeyFile, a.pub, a.cfg.Allow)
	if err == nil {
		a.mu.Lock()
		a.made = memo{st, h}
		a.mu.Unlock()
	}
	return h, err
}

// New loads a joined agent from opts.Dir.
func New(opts Options) (*Agent, error) {
	opts.defaults()
	cfg, err := LoadConfig(opts.Dir)
	if err != nil {
		return nil, err
	}
	k, err := readKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	a := &Agent{opts: opts, cfg: cfg, pub: k.Public(), urls: slices.Clone(cfg.URLs), clients: map[string]*client.Client{}, kick: make(chan struct{}, 1),
		applying: make(chan struct{}, 1)}
	a.m = newMetrics(opts.Registry, a)
	st, followed, files, err := loadCache(opts.Dir, opts.Log)
	if err != nil {
		return nil, err
	}
	if st != nil {
		a.applied, a.followed, a.cache = st, followed, files
		a.learn(st.URLs)
	}
	a.loadUnresolved()
	return a, nil
}

// Config returns the agent's config (with its credential: not for printing).
func (a *Agent) Config() Config { return a.cfg }

// PublicKey is the host's public key.
func (a *Agent) PublicKey() wgkey.Key { return a.pub }

// Applied returns the revision of the state applied last (0: none).
func (a *Agent) Applied() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.applied == nil {
		return 0
	}
	return a.applied.Revision
}

// State returns the desired state applied last (nil: none); not to be changed.
func (a *Agent) State() *api.AgentState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied.Flat()
}

// Unresolved names the peers the last apply configured without an endpoint
// because its host name has never resolved, with since when; nil: none.
func (a *Agent) Unresolved() []UnresolvedPeer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.unresolved)
}

// Interface is the name of the agent's interface.
func (a *Agent) Interface() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ifaceLocked()
}

func (a *Agent) ifaceLocked() string {
	switch {
	case a.cfg.Interface != "":
		return a.cfg.Interface
	case a.applied != nil && a.applied.Interface != "":
		return a.applied.Interface
	}
	return "wg0"
}

// Registry is the registry the agent's metrics are in.
func (a *Agent) Registry() *prometheus.Registry { return a.opts.Registry }

// learn adds controller URLs the agent did not know (from a desired state).
func (a *Agent) learn(urls []string) {
	for _, u := range urls {
		if !slices.Contains(a.urls, u) && strings.HasPrefix(u, "https://") {
			a.urls = append(a.urls, u)
		}
	}
}

// client returns the client of the controller to try now.
func (a *Agent) client() (*client.Client, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.urls[a.next%len(a.urls)]
	if c, ok := a.clients[u]; ok {
		return c, u, nil
	}
	rt, err := a.opts.Transport(a.cfg.CAHash)
	if err != nil {
		return nil, u, err
	}
	c, err := client.New(client.Options{URL: u, Token: a.cfg.Credential, Transport: rt, Timeout: a.opts.Wait + 30*time.Second, Versions: a.opts.APIVersions})
	if err != nil {
		return nil, u, err
	}
	a.clients[u] = c
	return c, u, nil
}

// failed moves on to the next controller URL.
func (a *Agent) failed() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next++
	a.m.reachable.Set(0)
}

// answered notes that a controller answered.
func (a *Agent) answered() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastOK = time.Now()
	a.guard = nil // a controller is reachable: the change stands
	a.m.reachable.Set(1)
}

// backoff is the wait before attempt n (n >= 1) after failures: full jitter
// over a doubling bound, so that agents that lost one controller do not come
// back in step.
func (a *Agent) backoff(n int) time.Duration {
	bound := a.opts.BackoffMin << min(n, 20)
	if bound <= 0 || bound > a.opts.BackoffMax {
		bound = a.opts.BackoffMax
	}
	return a.opts.BackoffMin/2 + rand.N(bound)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
