package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/ipam"
	"github.com/wgnet/wgnet/internal/trust"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Document is a spec file opened for editing. Edits change its YAML tree in
// place, so the user's comments, key order and blank lines survive; nothing
// touches the disk until Save, which refuses to write an invalid spec.
//
// Edits check what they need to do their job (the host exists, the name is
// free); the full validation runs at Save.
type Document struct {
	path   string
	doc    *yaml.Node // the DocumentNode
	layout layout
	// setKeys names the hosts whose public_key SetHost changed: they may now keep
	// their own key, and the one in the secrets directory must go (retireKeys).
	setKeys []string
	// loaded are the errors of the file as loaded, with their lines: an error
	// that an edit leaves in place is reported where it is in the file.
	loaded diag.List
}

// LoadDocument opens the spec file at path for editing.
func LoadDocument(path string) (*Document, error) {
	src, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseDocument(path, src)
}

// ParseDocument opens src, the content of the spec file path, for editing. It
// fails only when src is not a YAML mapping; a spec with other errors can be
// edited (and fixed) but not saved until it is valid.
func ParseDocument(path string, src []byte) (*Document, error) {
	doc, p := parseYAML(path, src)
	if p != nil {
		return nil, diag.Failure{Diagnostic: *p}
	}
	if top := doc.Content[0]; top.Kind != yaml.MappingNode {
		return nil, diag.Failure{Diagnostic: diag.Diagnostic{File: path, Line: top.Line, Severity: diag.Error, Code: CodeType, Message: "the spec must be a mapping of keys (version, network, ...)"}}
	}
	_, loaded, _ := Check(path, src)
	return &Document{path: path, doc: doc, layout: recordLayout(doc, src), loaded: loaded}, nil
}

// InitOptions describe a new network for Init.
type InitOptions struct {
	Network string         // required
	Subnets []netip.Prefix // required: one IPv4 and/or one IPv6 overlay subnet
	// Topology is TopologyHub or TopologyMesh; "" means mesh. In a hub network the
	// first host added becomes the hub.
	Topology   string
	ListenPort int    // 0 leaves it out (DefaultListenPort)
	Interface  string // "" leaves it out (DefaultInterface)
	MTU        int    // 0 leaves it out (derived from the hosts' underlay_mtu)
}

// Init returns a Document for a new network with no hosts, to be written by Save.
// It refuses a path that already exists, so that a spec is never replaced by
// accident, and options that don't make a valid spec.
func Init(path string, o InitOptions) (*Document, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("init %s: %w", path, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("init: %w", err)
	}
	if o.Topology == "" {
		o.Topology = TopologyMesh
	}
	top := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	top.HeadComment = fmt.Sprintf("# WireGuard network %q, managed by wgnet: edit it by hand or with\n"+
		"# `wgnet add/set/remove`, check it with `wgnet check`. Private keys are not\n"+
		"# kept here but in %s/ beside this file.", o.Network, filepath.Base(SecretsDir(path)))
	appendNetworkKeys(top, &Spec{Version: Version, Network: o.Network, Subnets: o.Subnets, Interface: o.Interface,
		ListenPort: o.ListenPort, MTU: o.MTU, Topology: o.Topology})
	appendKey(top, "hosts", &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle})
	d := newDocument(path, top)
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return d, nil
}

// appendNetworkKeys writes the network-wide keys of s, in the canonical order,
// leaving out the defaults.
func appendNetworkKeys(top *yaml.Node, s *Spec) {
	appendKey(top, "version", intNode(s.Version))
	appendKey(top, "network", strNode(s.Network))
	appendKey(top, "subnets", prefixList(s.Subnets))
	if s.Interface != "" {
		appendKey(top, "interface", strNode(s.Interface))
	}
	if s.ListenPort != 0 {
		appendKey(top, "listen_port", intNode(s.ListenPort))
	}
	if s.MTU != 0 {
		appendKey(top, "mtu", mtuNode(s.MTU))
	}
	appendKey(top, "topology", strNode(s.Topology))
}

// FromSpec returns a Document holding s (for example an imported network), to be
// written by Save. Source and Host.Line are ignored.
func FromSpec(path string, s *Spec) *Document {
	top := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	appendNetworkKeys(top, s)
	if s.Hub != "" {
		appendKey(top, "hub", strNode(s.Hub))
	}
	hosts := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for i := range s.Hosts {
		hosts.Content = append(hosts.Content, hostNode(&s.Hosts[i]))
	}
	if len(hosts.Content) == 0 {
		hosts.Style = yaml.FlowStyle
	}
	appendKey(top, "hosts", hosts)
	if len(s.PresharedKeys) > 0 {
		pairs := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for _, p := range s.PresharedKeys {
			pairs.Content = append(pairs.Content, pairNode(p))
		}
		appendKey(top, "preshared_keys", pairs)
	}
	if s.Policy.Present {
		appendKey(top, "policy", policyYAML(&s.Policy))
	}
	return newDocument(path, top)
}

// Marshal renders s as spec YAML, without validating it.
func Marshal(s *Spec) ([]byte, error) { return FromSpec("", s).Bytes() }

func newDocument(path string, top *yaml.Node) *Document {
	return &Document{
		path:   path,
		doc:    &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{top}},
		layout: layout{blank: map[*yaml.Node]bool{}, col: map[*yaml.Node]int{}},
	}
}

// Path returns the file the Document is saved to.
func (d *Document) Path() string { return d.path }

// Spec decodes the document as it is now, without validating it. Lines refer to
// the file as loaded (0 for what edits added). It fails only on type errors that
// leave nothing to decode; use Validate for the full check.
func (d *Document) Spec() (*Spec, error) {
	s, dec := decode(d.path, d.doc)
	if s == nil {
		return nil, list(dec.ps.errs).Err()
	}
	return s, nil
}

// Validate checks the document as Save would write it. A problem the file on
// disk already had (same code and message) is reported at its file and line
// there, so that an edit of a broken spec says where to fix it; one the edit
// brings has no line, since the file does not have this content yet.
func (d *Document) Validate() error {
	data, err := d.Bytes()
	if err != nil {
		return err
	}
	_, errs, _ := Check("", data)
	if len(errs) == 0 {
		return nil
	}
	for i := range errs {
		errs[i].Line = 0
		for _, p := range d.loaded {
			if p.Code == errs[i].Code && p.Message == errs[i].Message {
				errs[i].File, errs[i].Line = p.File, p.Line
				break
			}
		}
	}
	return errs.Err()
}

// Save validates the document and writes it atomically, keeping the mode of the
// file it replaces less write access for others (a new file is 0644: a spec
// holds no secret). A spec that is a symbolic link is written at its target, so
// the link stays a link. It never writes an invalid spec.
func (d *Document) Save() error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("not saving %s: %w", d.path, err)
	}
	data, err := d.Bytes()
	if err != nil {
		return err
	}
	path, perm := d.path, os.FileMode(0o644)
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if err := trust.Target(path); err != nil {
		return fmt.Errorf("save spec: %w", err)
	}
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm() &^ 0o022
	}
	return atomicfile.Write(path, data, perm, 0o755)
}

// AddHost adds h to the network and returns it as added. For each overlay subnet
// family that h has no address in, it allocates the lowest free one (ipam.Next).
// In a hub network without a hub, h becomes the hub. Give h.PublicKey for a host
// that keeps its own private key; otherwise EnsureKeys generates one.
func (d *Document) AddHost(h Host) (Host, error) {
	s, err := d.Spec()
	if err != nil {
		return h, err
	}
	if !ValidName(h.Name) {
		return h, fmt.Errorf("add host %q: a name is 1-63 of a-z 0-9 _ . - starting with a letter or digit", h.Name)
	}
	for _, o := range s.Hosts {
		if strings.EqualFold(o.Name, h.Name) {
			return h, fmt.Errorf("add host %s: a host of that name exists", h.Name)
		}
	}
	var used []netip.Addr
	for _, o := range s.Hosts {
		used = append(used, o.Addresses...)
	}
	h.Addresses = slices.Clone(h.Addresses)
	for _, sub := range s.overlay() {
		if slices.ContainsFunc(h.Addresses, func(a netip.Addr) bool { return a.Is4() == sub.Addr().Is4() }) {
			continue
		}
		a, err := ipam.Next(sub, used)
		if err != nil {
			return h, fmt.Errorf("add host %s: %w", h.Name, err)
		}
		h.Addresses = append(h.Addresses, a)
	}
	h.Line = 0

	top := d.top()
	hosts := lookup(top, "hosts")
	if hosts == nil || isNull(hosts) {
		hosts = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		setKey(top, "hosts", hosts, topKeys)
	}
	if hosts.Kind != yaml.SequenceNode {
		return h, fmt.Errorf("add host %s: hosts is not a list", h.Name)
	}
	n := hostNode(&h)
	if k := len(hosts.Content); k > 0 && d.layout.blank[hosts.Content[k-1]] {
		d.layout.blank[n] = true // keep the file's spacing between hosts
	}
	hosts.Style = 0 // block style: a flow list of mappings is unreadable
	hosts.Content = append(hosts.Content, n)
	if s.Topology == TopologyHub && s.Hub == "" {
		setKey(top, "hub", strNode(h.Name), topKeys)
	}
	return h, nil
}

// HostChanges is a patch for SetHost, in the style of wgctrl's PeerConfig: nil
// pointers and empty lists leave a field unchanged.
type HostChanges struct {
	Endpoint *string // "" removes the endpoint
	// Addresses, when not empty, replace the host's overlay addresses of the same
	// family; an address of the other family stays.
	Addresses []netip.Addr
	// ReplaceRoutes replaces the host's routes with Routes; otherwise Routes are
	// added to them (those already there are kept once). RemoveRoutes are removed
	// after that; removing a route the host doesn't have is an error.
	ReplaceRoutes bool
	Routes        []netip.Prefix
	RemoveRoutes  []netip.Prefix
	// Hub makes the host the network's hub (topology hub only).
	Hub            bool
	Keepalive      *int       // 0 removes it
	PublicKey      *wgkey.Key // the zero key removes it
	ListenPort     *int       // 0 removes it (the network's port applies)
	UnderlayMTU    *int       // 0 removes it
	PrivateKeyFile *string    // "" removes it
	HostFirewall   *string    // "" or "off" removes it
	Hooks          *Hooks     // replaces all hooks; empty Hooks removes them
	// Tags are added to the host's tags (those there are kept once);
	// RemoveTags are removed after that.
	Tags, RemoveTags []string
	WgQuick          WgQuickChanges
}

// WgQuickChanges patch the host fields that carry wg-quick's keys. Their
// values are text as the spec file holds it, so that Save refuses a bad one
// with the same error, at the same field, as a hand-edited file gets.
type WgQuickChanges struct {
	MTU    *string // mtu: a number or auto; "" removes it (the network's)
	Table  *string // table; "" removes it (auto)
	FwMark *string // fwmark: decimal or 0x hex; "" removes it
	// DNS and FullTunnel replace the host's lists; an empty list removes the key.
	DNS, FullTunnel *[]string
	RandomPort      bool  // listen_port: random
	External        *bool // external: true; false removes the key
	AssignAddress   *bool // false writes assign_address: false; true removes it
}

// setWgQuick applies c to host mapping n.
func setWgQuick(n *yaml.Node, c WgQuickChanges) {
	text := func(key string, v *string, node func(string) *yaml.Node) {
		if v != nil {
			setOrDel(n, key, *v != "", func() *yaml.Node { return node(*v) })
		}
	}
	text("mtu", c.MTU, func(v string) *yaml.Node {
		if _, err := strconv.Atoi(v); err == nil {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: v}
		}
		return strNode(v) // auto, or refused by Save as the file would be
	})
	text("table", c.Table, strNode)
	text("fwmark", c.FwMark, strNode)
	for _, l := range []struct {
		key   string
		items *[]string
	}{{"dns", c.DNS}, {"full_tunnel", c.FullTunnel}} {
		if l.items != nil {
			setOrDel(n, l.key, len(*l.items) > 0, func() *yaml.Node { return flowList(*l.items) })
		}
	}
	if c.RandomPort {
		setKey(n, "listen_port", strNode("random"), hostKeys)
	}
	boolNode := func(v bool) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
	}
	if c.External != nil {
		setOrDel(n, "external", *c.External, func() *yaml.Node { return boolNode(true) })
	}
	if c.AssignAddress != nil {
		setOrDel(n, "assign_address", !*c.AssignAddress, func() *yaml.Node { return boolNode(false) })
	}
}

// SetHost changes the host called name.
func (d *Document) SetHost(name string, c HostChanges) error {
	n, err := d.hostNode(name)
	if err != nil {
		return err
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("set host %s: %s", name, fmt.Sprintf(format, a...))
	}
	if c.Endpoint != nil {
		setOrDel(n, "endpoint", *c.Endpoint != "", func() *yaml.Node { return strNode(*c.Endpoint) })
	}
	if len(c.Addresses) > 0 {
		// A new address replaces the host's address of the same family only.
		cur, err := d.currentAddrs(n)
		if err != nil {
			return fail("%v", err)
		}
		// An address kept keeps its text, and so its prefix length if it has one.
		addrs := slices.DeleteFunc(cur, func(a addrText) bool {
			return slices.ContainsFunc(c.Addresses, func(b netip.Addr) bool { return a.addr.Is4() == b.Is4() })
		})
		for _, a := range c.Addresses {
			addrs = append(addrs, addrText{a, a.String()})
		}
		slices.SortStableFunc(addrs, func(a, b addrText) int { return a.addr.BitLen() - b.addr.BitLen() }) // IPv4 first
		var texts []string
		for _, a := range addrs {
			texts = append(texts, a.text)
		}
		setKey(n, "address", flowList(texts), hostKeys)
	}
	if c.ReplaceRoutes || len(c.Routes) > 0 || len(c.RemoveRoutes) > 0 {
		var routes []netip.Prefix
		if !c.ReplaceRoutes {
			cur, err := d.currentRoutes(n)
			if err != nil {
				return fail("%v", err)
			}
			routes = cur
		}
		for _, r := range c.Routes {
			if !slices.Contains(routes, r) {
				routes = append(routes, r)
			}
		}
		for _, r := range c.RemoveRoutes {
			i := slices.Index(routes, r)
			if i < 0 {
				return fail("it has no route %s", r)
			}
			routes = slices.Delete(routes, i, i+1)
		}
		if seq := lookup(n, "routes"); !c.ReplaceRoutes && len(routes) > 0 && seq != nil && seq.Kind == yaml.SequenceNode {
			d.editList(seq, routes)
		} else {
			setOrDel(n, "routes", len(routes) > 0, func() *yaml.Node { return prefixList(routes) })
		}
	}
	if c.Keepalive != nil {
		setOrDel(n, "keepalive", *c.Keepalive != 0, func() *yaml.Node { return intNode(*c.Keepalive) })
	}
	if c.PublicKey != nil {
		d.setKeys = append(d.setKeys, name)
		setOrDel(n, "public_key", !c.PublicKey.IsZero(), func() *yaml.Node { return strNode(c.PublicKey.String()) })
	}
	if c.ListenPort != nil {
		setOrDel(n, "listen_port", *c.ListenPort != 0, func() *yaml.Node { return intNode(*c.ListenPort) })
	}
	if c.UnderlayMTU != nil {
		setOrDel(n, "underlay_mtu", *c.UnderlayMTU != 0, func() *yaml.Node { return intNode(*c.UnderlayMTU) })
	}
	if c.PrivateKeyFile != nil {
		setOrDel(n, "private_key_file", *c.PrivateKeyFile != "", func() *yaml.Node { return strNode(*c.PrivateKeyFile) })
	}
	if c.HostFirewall != nil {
		v := *c.HostFirewall
		setOrDel(n, "host_firewall", v != "" && v != "off", func() *yaml.Node { return strNode(v) })
	}
	setWgQuick(n, c.WgQuick)
	if c.Hooks != nil {
		hn := hooksNode(*c.Hooks)
		setOrDel(n, "hooks", hn != nil, func() *yaml.Node { return hn })
	}
	if len(c.Tags) > 0 || len(c.RemoveTags) > 0 {
		if err := setTags(n, c.Tags, c.RemoveTags); err != nil {
			return fail("%v", err)
		}
	}
	if c.Hub {
		return d.SetHub(name)
	}
	return nil
}

// setTags adds and removes tags of host mapping n.
func setTags(n *yaml.Node, add, remove []string) error {
	var tags []string
	if v := lookup(n, "tags"); v != nil && !isNull(v) {
		items := v.Content
		if v.Kind == yaml.ScalarNode {
			items = []*yaml.Node{v}
		}
		for _, it := range items {
			tags = append(tags, it.Value)
		}
	}
	for _, t := range add {
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	for _, t := range remove {
		i := slices.Index(tags, t)
		if i < 0 {
			return fmt.Errorf("it has no tag %s", t)
		}
		tags = slices.Delete(tags, i, i+1)
	}
	setOrDel(n, "tags", len(tags) > 0, func() *yaml.Node { return flowList(tags) })
	return nil
}

// addrText is an address of the spec and how it is written there.
type addrText struct {
	addr netip.Addr
	text string
}

func (d *Document) currentAddrs(n *yaml.Node) ([]addrText, error) {
	v := lookup(n, "address")
	if v == nil || isNull(v) {
		return nil, nil
	}
	items := v.Content
	if v.Kind == yaml.ScalarNode {
		items = []*yaml.Node{v}
	}
	var out []addrText
	for _, it := range items {
		a, err := netip.ParseAddr(it.Value)
		if p, perr := netip.ParsePrefix(it.Value); err != nil && perr == nil {
			a, err = p.Addr(), nil
		}
		if it.Kind != yaml.ScalarNode || err != nil {
			return nil, fmt.Errorf("line %d: its addresses don't parse; fix them by hand", it.Line)
		}
		out = append(out, addrText{a, it.Value})
	}
	return out, nil
}

func (d *Document) currentRoutes(n *yaml.Node) ([]netip.Prefix, error) {
	v := lookup(n, "routes")
	if v == nil || isNull(v) {
		return nil, nil
	}
	var out []netip.Prefix
	items := v.Content
	if v.Kind == yaml.ScalarNode {
		items = []*yaml.Node{v}
	}
	for _, it := range items {
		p, err := netip.ParsePrefix(it.Value)
		if it.Kind != yaml.ScalarNode || err != nil {
			return nil, fmt.Errorf("line %d: its routes don't parse; fix them by hand", it.Line)
		}
		out = append(out, p)
	}
	return out, nil
}

// SetHub makes the host called name the hub of a hub network.
func (d *Document) SetHub(name string) error {
	if _, err := d.hostNode(name); err != nil {
		return err
	}
	top := d.top()
	if t := lookup(top, "topology"); t == nil || t.Value != TopologyHub {
		return fmt.Errorf("set hub %s: the network's topology is not hub", name)
	}
	setKey(top, "hub", strNode(name), topKeys)
	return nil
}

// RemoveHost removes the host called name and the preshared pairs that name it.
// Removing the hub needs newHub, the host that takes its place, unless it is the
// last host; newHub must be "" when name is not the hub. The host's secrets are
// not touched (see RemoveHostSecrets).
func (d *Document) RemoveHost(name, newHub string) error {
	n, err := d.hostNode(name)
	if err != nil {
		return err
	}
	top := d.top()
	hosts := lookup(top, "hosts")
	hub := lookup(top, "hub")
	isHub := hub != nil && hub.Kind == yaml.ScalarNode && hub.Value == name
	switch {
	case isHub && newHub == name:
		return fmt.Errorf("remove host %s: the new hub must be another host", name)
	case isHub && newHub != "":
		if err := d.SetHub(newHub); err != nil {
			return fmt.Errorf("remove host %s: %w", name, err)
		}
	case isHub && len(hosts.Content) > 1:
		return fmt.Errorf("remove host %s: it is the hub; name the host that takes its place", name)
	case isHub:
		deleteKey(top, "hub")
	case newHub != "":
		return fmt.Errorf("remove host %s: it is not the hub, so it needs no replacement", name)
	}
	removeItem(hosts, n, &d.layout)
	if pairs := lookup(top, "preshared_keys"); pairs != nil && pairs.Kind == yaml.SequenceNode {
		for i := len(pairs.Content) - 1; i >= 0; i-- {
			p := pairs.Content[i]
			if p.Kind == yaml.SequenceNode && slices.ContainsFunc(p.Content, func(x *yaml.Node) bool { return x.Value == name }) {
				removeItem(pairs, p, &d.layout)
			}
		}
	}
	return nil
}

// AddPresharedPair adds a pair of hosts whose tunnel uses a preshared key
// (EnsureKeys generates the key). Adding a pair that is there does nothing.
func (d *Document) AddPresharedPair(p Pair) error {
	for _, name := range p {
		if _, err := d.hostNode(name); err != nil {
			return err
		}
	}
	if p[0] == p[1] {
		return fmt.Errorf("add preshared pair: %s twice; a pair names two hosts", p[0])
	}
	s, err := d.Spec()
	if err != nil {
		return err
	}
	for _, q := range s.PresharedKeys {
		if q.Key() == p.Key() {
			return nil
		}
	}
	top := d.top()
	pairs := lookup(top, "preshared_keys")
	if pairs == nil || isNull(pairs) {
		pairs = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		setKey(top, "preshared_keys", pairs, topKeys)
	}
	if pairs.Kind != yaml.SequenceNode {
		return errors.New("add preshared pair: preshared_keys is not a list")
	}
	pairs.Content = append(pairs.Content, pairNode(p.Key()))
	return nil
}

// top returns the top mapping (ParseDocument checked its kind).
func (d *Document) top() *yaml.Node { return d.doc.Content[0] }

// hostNode finds the mapping of the host called name.
func (d *Document) hostNode(name string) (*yaml.Node, error) {
	hosts := lookup(d.top(), "hosts")
	if hosts != nil && hosts.Kind == yaml.SequenceNode {
		for _, h := range hosts.Content {
			if h.Kind != yaml.MappingNode {
				continue
			}
			if v := lookup(h, "name"); v != nil && v.Kind == yaml.ScalarNode && v.Value == name {
				return h, nil
			}
		}
	}
	return nil, fmt.Errorf("no host called %q", name)
}

// lookup returns the value of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setKey sets key in mapping m to v. An existing key keeps its place, and its
// value node is updated in place, so that its comments (and the layout recorded
// for it) stay; a list keeps its flow or block style. A new key goes after the
// keys that come before it in order, the canonical key order.
func setKey(m *yaml.Node, key string, v *yaml.Node, order []string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		old := m.Content[i+1]
		style := v.Style
		switch {
		case old.Kind == yaml.SequenceNode && v.Kind == yaml.SequenceNode && !hasMapping(v):
			style = old.Style & yaml.FlowStyle
		case old.Kind == yaml.ScalarNode && v.Kind == yaml.ScalarNode:
			style = old.Style & (yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle)
		}
		old.Kind, old.Tag, old.Value, old.Content, old.Style = v.Kind, v.Tag, v.Value, v.Content, style
		old.Anchor, old.Alias = "", nil
		return
	}
	rank := slices.Index(order, key)
	at := len(m.Content)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if r := slices.Index(order, m.Content[i].Value); r > rank && rank >= 0 {
			at = i
			break
		}
	}
	k := strNode(key)
	m.Content = slices.Insert(m.Content, at, k, v)
}

func hasMapping(n *yaml.Node) bool {
	return slices.ContainsFunc(n.Content, func(c *yaml.Node) bool { return c.Kind == yaml.MappingNode })
}

// setOrDel sets key in host mapping n when set is true, else deletes it.
func setOrDel(n *yaml.Node, key string, set bool, v func() *yaml.Node) {
	if set {
		setKey(n, key, v(), hostKeys)
	} else {
		deleteKey(n, key)
	}
}

func appendKey(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, strNode(key), v)
}

// deleteKey removes key from mapping m. A foot comment on its value moves to the
// key before, so comments that close a section stay.
func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			foot := m.Content[i+1].FootComment + m.Content[i].FootComment
			m.Content = slices.Delete(m.Content, i, i+2)
			if foot != "" && i >= 2 {
				m.Content[i-1].FootComment = joinComments(m.Content[i-1].FootComment, foot)
			}
			return
		}
	}
}

// removeItem removes n from sequence seq, keeping its foot comment on the item
// before and the spacing of the item after.
// editList makes the sequence seq hold want (prefixes, in order of want) by
// removing the items that went and appending the new ones, so that the comments
// on the items that stay stay with them.
func (d *Document) editList(seq *yaml.Node, want []netip.Prefix) {
	for _, it := range slices.Clone(seq.Content) {
		p, err := netip.ParsePrefix(it.Value)
		if err != nil || !slices.Contains(want, p) {
			removeItem(seq, it, &d.layout)
		}
	}
	for _, p := range want {
		if !slices.ContainsFunc(seq.Content, func(it *yaml.Node) bool { return it.Value == p.String() }) {
			seq.Content = append(seq.Content, strNode(p.String()))
		}
	}
}

func removeItem(seq, n *yaml.Node, l *layout) {
	i := slices.Index(seq.Content, n)
	if i < 0 {
		return
	}
	seq.Content = slices.Delete(seq.Content, i, i+1)
	if n.FootComment != "" && i > 0 {
		prev := seq.Content[i-1]
		prev.FootComment = joinComments(prev.FootComment, n.FootComment)
	}
	if i == 0 && len(seq.Content) > 0 {
		l.blank[seq.Content[0]] = l.blank[n]
	}
}

func joinComments(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "\n" + b
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func intNode(v int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
}

func flowList(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for _, s := range items {
		n.Content = append(n.Content, strNode(s))
	}
	return n
}

func prefixList(ps []netip.Prefix) *yaml.Node {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return flowList(s)
}

// mtuNode writes an MTU: a number, or auto (MTUAuto).
func mtuNode(v int) *yaml.Node {
	if v == MTUAuto {
		return strNode("auto")
	}
	return intNode(v)
}

// hostAddrList writes h's addresses, each with its own prefix length when it
// has one (AddressBits).
func hostAddrList(h *Host) *yaml.Node {
	var s []string
	for _, a := range h.Addresses {
		if bits, ok := h.AddressBits[a]; ok {
			s = append(s, netip.PrefixFrom(a, bits).String())
		} else {
			s = append(s, a.String())
		}
	}
	return flowList(s)
}

func addrList(as []netip.Addr) *yaml.Node {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	return flowList(s)
}

func pairNode(p Pair) *yaml.Node { return flowList(p[:]) }

// hostNode renders a host in the canonical key order, leaving out unset fields.
func hostNode(h *Host) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	appendKey(n, "name", strNode(h.Name))
	if h.External {
		appendKey(n, "external", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
	}
	if h.Endpoint != "" {
		appendKey(n, "endpoint", strNode(h.Endpoint))
	}
	if len(h.Addresses) > 0 {
		appendKey(n, "address", hostAddrList(h))
	}
	if h.AddressElsewhere {
		appendKey(n, "assign_address", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"})
	}
	if len(h.Routes) > 0 {
		appendKey(n, "routes", prefixList(h.Routes))
	}
	if len(h.FullTunnel) > 0 {
		appendKey(n, "full_tunnel", prefixList(h.FullTunnel))
	}
	if !h.PublicKey.IsZero() {
		appendKey(n, "public_key", strNode(h.PublicKey.String()))
	}
	if h.Keepalive != 0 {
		appendKey(n, "keepalive", intNode(h.Keepalive))
	}
	if h.ListenPort != 0 {
		appendKey(n, "listen_port", intNode(h.ListenPort))
	}
	if h.RandomPort {
		appendKey(n, "listen_port", strNode("random"))
	}
	if h.MTU != 0 {
		appendKey(n, "mtu", mtuNode(h.MTU))
	}
	if h.UnderlayMTU != 0 {
		appendKey(n, "underlay_mtu", intNode(h.UnderlayMTU))
	}
	if len(h.DNS) > 0 {
		appendKey(n, "dns", flowList(h.DNS))
	}
	if h.Table != "" {
		appendKey(n, "table", strNode(h.Table))
	}
	if h.FwMark != 0 {
		appendKey(n, "fwmark", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "0x" + strconv.FormatUint(uint64(h.FwMark), 16)})
	}
	if h.PrivateKeyFile != "" {
		appendKey(n, "private_key_file", strNode(h.PrivateKeyFile))
	}
	if hn := hooksNode(h.Hooks); hn != nil {
		appendKey(n, "hooks", hn)
	}
	if len(h.Tags) > 0 {
		appendKey(n, "tags", flowList(h.Tags))
	}
	return n
}

func hooksNode(hk Hooks) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, x := range []struct {
		key  string
		cmds []string
	}{{"pre_up", hk.PreUp}, {"post_up", hk.PostUp}, {"pre_down", hk.PreDown}, {"post_down", hk.PostDown}} {
		if len(x.cmds) > 0 {
			l := flowList(x.cmds)
			l.Style = 0
			appendKey(n, x.key, l)
		}
	}
	if len(n.Content) == 0 {
		return nil
	}
	return n
}
