package check

import (
	"cmp"
	"fmt"
	"os"
	"slices"

	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Severity says whether a finding breaks the network (Error) or is a risk worth a
// look (Warning). Each code has one fixed severity.
type Severity string

// Severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one problem, located where its fix belongs.
type Finding struct {
	File     string   `json:"file"`
	Line     int      `json:"line"` // 0 = the whole file
	Severity Severity `json:"severity"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
}

// String formats f as "FILE:LINE: SEVERITY: CODE: MESSAGE", the form editors and CI
// annotate; without a line it is "FILE: SEVERITY: CODE: MESSAGE".
func (f Finding) String() string {
	if f.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s: %s", f.File, f.Line, f.Severity, f.Code, f.Message)
	}
	return fmt.Sprintf("%s: %s: %s: %s", f.File, f.Severity, f.Code, f.Message)
}

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
}

// Configs lints a set of configs as one network and returns the findings sorted by
// file, line and code. Configs parsed from files with errors are linted with
// what did parse: a check that depends on a value a bad line left unknown
// (wgconf.Pos.Bad) says nothing, rather than echo the syntax error; every other
// check runs.
func Configs(in Input) []Finding {
	n := newNetwork(in)
	n.checkAll()
	return sortFindings(n.findings)
}

func sortFindings(fs []Finding) []Finding {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.CompactFunc(fs, func(a, b Finding) bool { return a == b })
}

// Count returns the number of errors and warnings in fs.
func Count(fs []Finding) (errors, warnings int) {
	for _, f := range fs {
		if f.Severity == Error {
			errors++
		} else {
			warnings++
		}
	}
	return errors, warnings
}
