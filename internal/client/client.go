// Package client is the admin side of the controller's API: HTTPS with the
// controller's CA pinned (its certificate, or the SHA-256 of its public key),
// the admin token as a bearer credential, the wire types of package api. The
// command stays thin: it turns flags into a Client call. It imports api only.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wgnet/wgnet/internal/api"
)

// Options say where the controller is and how to trust it. Exactly one of
// CAPEM and CAHash is needed: the system's roots are never used.
type Options struct {
	URL string // https://HOST:PORT
	// Fallback are more controllers of the same installation (several on one
	// database), tried in order when a connection to the one in use can't be
	// made; never once a request was sent, so no change is sent twice.
	Fallback []string
	Token    string // the admin token
	CAPEM    []byte // the controller's CA certificate (ca.crt)
	CAHash   string // or its pin, "sha256:HEX" of the CA's public key
	// Timeout of one request; zero means 30 seconds.
	Timeout time.Duration
	// Transport, when set instead of a CA, carries the requests (one the
	// caller built with Transport(), to share its connections or to watch
	// what is sent).
	Transport http.RoundTripper
	// Versions are the API versions the client says it speaks, newest
	// first; nil: api.Versions. A test or a benchmark gives an older list to
	// speak as an older release does.
	Versions []string
}

// Client talks to one controller.
type Client struct {
	token    string
	hc       *http.Client
	versions []string // the API versions sent and accepted
	// theirs are the API versions the last answer said the controller speaks.
	theirs atomic.Pointer[[]string]

	mu    sync.Mutex // guards cur
	bases []*url.URL // URL, then Fallback
	cur   int        // the one in use
}

// Error is an answer other than 2xx.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("controller: %s (HTTP %d)", e.Message, e.Status) }

// New returns a client for o.
func New(o Options) (*Client, error) {
	var bases []*url.URL
	for _, s := range append([]string{o.URL}, o.Fallback...) {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("controller URL %q: want https://HOST:PORT", s)
		}
		bases = append(bases, u)
	}
	c, err := newClient(o)
	if err != nil {
		return nil, err
	}
	c.bases = bases
	c.versions = o.Versions
	if c.versions == nil {
		c.versions = api.Versions
	}
	return c, nil
}

// newClient makes the client's HTTP side; the TLS server name is each
// request's host.
func newClient(o Options) (*Client, error) {
	if o.Token == "" {
		return nil, errors.New("no admin token: set WGNET_TOKEN or give --token-file")
	}
	if o.Transport != nil && (len(o.CAPEM) > 0 || o.CAHash != "") {
		return nil, errors.New("give a transport or a CA, not both")
	}
	if o.Transport != nil {
		return &Client{token: o.Token, hc: &http.Client{Transport: o.Transport, Timeout: o.Timeout}}, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case len(o.CAPEM) > 0 && o.CAHash != "":
		return nil, errors.New("give the controller's CA as a file or as a hash, not both")
	case len(o.CAPEM) > 0:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(o.CAPEM) {
			return nil, errors.New("CA file: no PEM certificate in it")
		}
		cfg.RootCAs = pool
	case o.CAHash != "":
		pin, err := api.ParseCAHash(o.CAHash)
		if err != nil {
			return nil, err
		}
		// The chain is checked below against the pinned CA only.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifyPinned(cs, pin) }
	default:
		return nil, errors.New("no CA to trust the controller by: give --ca-file or --ca-hash")
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16}
	return &Client{token: o.Token, hc: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

// Transport returns an HTTPS transport that trusts only the CA pinned by
// caHash (for the server name of each request's URL), for Options.Transport.
// It speaks HTTP/1.1: an agent holds one long poll and now and then a report,
// and HTTP/2's framing costs a controller of a thousand agents more CPU per
// request than it saves.
func Transport(caHash string) (*http.Transport, error) {
	pin, err := api.ParseCAHash(caHash)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error { return verifyPinned(cs, pin) }}
	return &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 4, TLSHandshakeTimeout: 10 * time.Second}, nil
}

// verifyPinned accepts the connection when a certificate the server sent has
// the pinned public key and the leaf verifies against it for the server's name.
func verifyPinned(cs tls.ConnectionState, pin string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("controller sent no certificate")
	}
	for _, c := range cs.PeerCertificates {
		if api.CAHash(c) != pin {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(c)
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: cs.ServerName})
		return err
	}
	return fmt.Errorf("%w: the controller's CA is not %s (a token or --ca-hash for another controller, or the controller's CA changed)", ErrWrongCA, pin)
}

// ErrWrongCA is a controller whose CA is not the pinned one.
var ErrWrongCA = errors.New("wrong CA hash")

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// do sends one request to the controller in use, moving on to the next one
// it knows while a connection can't be made (the request was not sent).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var errs []error
	for i := range len(c.bases) {
		k := (start + i) % len(c.bases)
		err := c.doAt(ctx, c.bases[k], method, path, in, out)
		var oe *net.OpError
		if err == nil || !errors.As(err, &oe) || oe.Op != "dial" || ctx.Err() != nil {
			if err == nil && k != start {
				c.mu.Lock()
				c.cur = k
				c.mu.Unlock()
			}
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Client) doAt(ctx context.Context, base *url.URL, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := base.JoinPath(strings.Split(path, "?")[0])
	if _, q, ok := strings.Cut(path, "?"); ok {
		u.RawQuery = q
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set(api.VersionHeader, strings.Join(c.versions, ","))
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	var ue *url.Error
	if errors.Is(err, ErrWrongCA) && errors.As(err, &ue) {
		return fmt.Errorf("connect to %s: %w", base.Host, ue.Err)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if h := resp.Header.Get(api.VersionHeader); h != "" {
		theirs := api.ParseVersions(h)
		if _, err := api.Negotiate(c.versions, theirs); err != nil {
			return fmt.Errorf("controller %s: %w", base.Host, err)
		}
		c.theirs.Store(&theirs)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("controller answer: %w", err)
	}
	return nil
}

func networkPath(n string, rest ...string) string {
	p := "/" + api.Version + "/networks/" + url.PathEscape(n)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// Networks lists the networks.
func (c *Client) Networks(ctx context.Context) ([]api.Network, error) {
	var out []api.Network
	return out, c.do(ctx, "GET", "/"+api.Version+"/networks", nil, &out)
}

// CreateNetwork creates a network.
func (c *Client) CreateNetwork(ctx context.Context, n api.CreateNetwork) (api.Network, error) {
	var out api.Network
	return out, c.do(ctx, "POST", "/"+api.Version+"/networks", n, &out)
}

// DeleteNetwork deletes a network with its hosts.
func (c *Client) DeleteNetwork(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", networkPath(name), nil, nil)
}

// Hosts lists a network's hosts.
func (c *Client) Hosts(ctx context.Context, network string) (api.Hosts, error) {
	var out api.Hosts
	return out, c.do(ctx, "GET", networkPath(network, "hosts"), nil, &out)
}

// AddHost adds a host.
func (c *Client) AddHost(ctx context.Context, network string, h api.Host) (api.HostResult, error) {
	var out api.HostResult
	return out, c.do(ctx, "POST", networkPath(network, "hosts"), h, &out)
}

// SetHost changes a host.
func (c *Client) SetHost(ctx context.Context, network, host string, s api.SetHost) (api.HostResult, error) {
	var out api.HostResult
	return out, c.do(ctx, "PATCH", networkPath(network, "hosts", host), s, &out)
}

// RemoveHost removes a host.
func (c *Client) RemoveHost(ctx context.Context, network, host string) (api.Removed, error) {
	var out api.Removed
	return out, c.do(ctx, "DELETE", networkPath(network, "hosts", host), nil, &out)
}

// Config returns a host's rendered config (public data only).
func (c *Client) Config(ctx context.Context, network, host string) (api.Config, error) {
	var out api.Config
	return out, c.do(ctx, "GET", networkPath(network, "hosts", host, "config"), nil, &out)
}

// Check lints a network.
func (c *Client) Check(ctx context.Context, network string) (api.Check, error) {
	var out api.Check
	return out, c.do(ctx, "GET", networkPath(network, "check"), nil, &out)
}

// Changes returns the change log after revision since.
func (c *Client) Changes(ctx context.Context, network string, since uint64) (api.Changes, error) {
	var out api.Changes
	return out, c.do(ctx, "GET", networkPath(network, "changes")+"?since="+strconv.FormatUint(since, 10), nil, &out)
}

// CreateToken makes a join token for a network.
func (c *Client) CreateToken(ctx context.Context, network string, t api.CreateToken) (api.Token, error) {
	var out api.Token
	return out, c.do(ctx, "POST", networkPath(network, "tokens"), t, &out)
}

// Policy returns a network's policy with the revision it was read at.
func (c *Client) Policy(ctx context.Context, network string) (api.Policy, error) {
	var out api.Policy
	return out, c.do(ctx, "GET", networkPath(network, "policy"), nil, &out)
}

// SetPolicy replaces a network's policy; with p.Revision set, only if the
// network is still at that revision (an *Error with status 409 otherwise).
func (c *Client) SetPolicy(ctx context.Context, network string, p api.Policy) (api.Policy, error) {
	var out api.Policy
	return out, c.do(ctx, "PUT", networkPath(network, "policy"), p, &out)
}

// CreateAdminToken makes another admin token (shown once).
func (c *Client) CreateAdminToken(ctx context.Context) (api.AdminToken, error) {
	var out api.AdminToken
	return out, c.do(ctx, "POST", "/"+api.Version+"/tokens/admin", nil, &out)
}

// Tokens lists the admin and join tokens by ID.
func (c *Client) Tokens(ctx context.Context) (api.Tokens, error) {
	var out api.Tokens
	return out, c.do(ctx, "GET", "/"+api.Version+"/tokens", nil, &out)
}

// RevokeToken deletes the admin or join token with the ID (as Tokens lists it).
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/"+api.Version+"/tokens/"+url.PathEscape(id), nil, nil)
}

// Status returns each host of a network with what its agent last reported.
func (c *Client) Status(ctx context.Context, network string) (api.Status, error) {
	var out api.Status
	return out, c.do(ctx, "GET", networkPath(network, "status"), nil, &out)
}

// Audit returns the audit log after sequence number since (at most 1,000 entries).
func (c *Client) Audit(ctx context.Context, since uint64) (api.Audit, error) {
	var out api.Audit
	return out, c.do(ctx, "GET", "/"+api.Version+"/audit?since="+strconv.FormatUint(since, 10), nil, &out)
}

// Enroll joins host h to the network of a join token: it trusts the
// controller by the token's CA pin and tries the token's URLs in order, moving
// on only when one can't be reached (an answer from a controller is final).
func Enroll(ctx context.Context, joinToken string, h api.Host) (api.Enrolled, error) {
	return EnrollVia(ctx, joinToken, h, nil)
}

// EnrollVia is Enroll through rt (nil: a transport pinned to the token's CA,
// as Enroll; else one the caller built with Transport).
func EnrollVia(ctx context.Context, joinToken string, h api.Host, rt http.RoundTripper) (api.Enrolled, error) {
	var out api.Enrolled
	jt, err := api.ParseJoinToken(joinToken)
	if err != nil {
		return out, err
	}
	var errs []error
	for _, u := range jt.URLs {
		o := Options{URL: u, Token: jt.Secret, CAHash: jt.CAHash}
		if rt != nil {
			o.CAHash, o.Transport = "", rt
		}
		c, err := New(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = c.do(ctx, "POST", "/"+api.Version+"/enroll", h, &out)
		c.Close()
		var ae *Error
		if err == nil || errors.As(err, &ae) {
			return out, err
		}
		errs = append(errs, err) // names the URL already
	}
	return out, errors.Join(errs...)
}

// AgentState returns the desired state of the host whose agent credential the
// client holds.
func (c *Client) AgentState(ctx context.Context) (api.AgentState, error) {
	var out api.AgentState
	return out, c.do(ctx, "GET", "/"+api.Version+"/agent/state", nil, &out)
}

// AgentChanges returns the agent's network's change log after since; with
// wait > 0 the controller holds the request until the revision passes since
// or wait has passed; with state, an answer whose revision moved carries the
// agent's desired state.
func (c *Client) AgentChanges(ctx context.Context, since uint64, wait time.Duration, state bool) (api.AgentChanges, error) {
	var out api.AgentChanges
	q := "?since=" + strconv.FormatUint(since, 10)
	if wait > 0 {
		q += "&wait=" + wait.String()
	}
	if state {
		q += "&state=1"
	}
	return out, c.do(ctx, "GET", "/"+api.Version+"/agent/changes"+q, nil, &out)
}

// Speaks reports whether API version v is spoken by the client (Versions)
// and by the controller that answered last (false before any answer).
func (c *Client) Speaks(v string) bool {
	theirs := c.theirs.Load()
	return theirs != nil && slices.Contains(*theirs, v) && slices.Contains(c.versions, v)
}

// AgentReport sends the agent's status report.
func (c *Client) AgentReport(ctx context.Context, r api.AgentReport) error {
	return c.do(ctx, "POST", "/"+api.Version+"/agent/status", r, nil)
}

// AgentLeave removes the agent's host from its network.
func (c *Client) AgentLeave(ctx context.Context) (api.Removed, error) {
	var out api.Removed
	return out, c.do(ctx, "DELETE", "/"+api.Version+"/agent", nil, &out)
}
