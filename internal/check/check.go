package check

import (
	"cmp"
	"os"
	"runtime"
	"slices"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Topologies for Input.Topology.
const (
	TopologyHub  = "hub"
	TopologyMesh = "mesh"
)

// Input is a whole network: one config per host.
type Input struct {
	// Configs are the hosts' configs. A config's host name is its Name, or else
	// derived from Interface.Pos.File as HostNames does. Findings name the file in
	// Interface.Pos.File, or the host name for configs not read from a file.
	Configs []*wgconf.Config
	// Modes maps a file name to its permission bits, for the world-readable check;
	// nil skips that check.
	Modes map[string]os.FileMode
	// Topology is what the network is meant to be: "hub" (every host peers with
	// Hub), "mesh" (every host peers with every other) or "" (not known: inferred
	// for messages only; the missing-peer check needs an explicit topology).
	Topology string
	// Hub names the hub host for Topology "hub"; "" = the host with the most peers.
	Hub string
	// PublicKeys gives, by host name, the public key of hosts whose config has no
	// PrivateKey (a hook loads it), so that peers can be checked by key for them
	// too. Optional; a host's own PrivateKey always wins.
	PublicKeys map[string]wgkey.Key
	// Apart reports, by host names, the pairs meant never to talk (a policy
	// keeps them apart, so the compiler gave them no peering): missing-peer and
	// no-route leave them out. Nil: none.
	Apart func(a, b string) bool
}

// Configs lints a set of configs as one network and returns the findings sorted by
// file, line and code. Configs parsed from files with errors are linted with
// what did parse: a check that depends on a value a bad line left unknown
// (wgconf.Pos.Bad) says nothing, rather than echo the syntax error; every other
// check runs.
func Configs(in Input) diag.List { return configs(in, runtime.GOMAXPROCS(0)) }

// configs is Configs on up to workers goroutines (one: everything in order,
// as TestParallelSameAsSerial compares).
func configs(in Input, workers int) diag.List {
	n := newNetworkOn(in, workers)
	n.checkAll()
	return sortFindings(n.findings)
}

func sortFindings(fs diag.List) diag.List {
	slices.SortStableFunc(fs, func(a, b diag.Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.Compact(fs)
}
