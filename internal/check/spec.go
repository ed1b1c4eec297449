package check

import "github.com/wgnet/wgnet/internal/diag"

// SpecHost is what MergeSpec needs of a host of a spec: its name and the line
// of its entry.
type SpecHost struct {
	Name string
	Line int
}

// sameAsSpec maps a config check's code to the spec check that reports the same
// problem, so that `check` on a spec says each problem once ("": the spec
// always says it better).
var sameAsSpec = map[string]string{
	"keepalive-nat":  "spec-keepalive-missing",
	"docker-overlap": "spec-docker-overlap",
	"route-overlap":  "spec-route-overlap",
	"no-endpoint":    "spec-unreachable",
	"endpoint-port":  "spec-endpoint-listen-port",
	"endpoint-loop":  "spec-route-endpoint",
	// The spec knows each host's underlay MTU; the configs don't.
	"mtu": "",
}

// MergeSpec adds to the findings of a spec (specFile's own, already in out) the
// findings of the configs it compiles to (compiled, whose File is a host name):
// each one moves to the host's entry in the spec, since that is where the fix
// belongs, and one the spec's own findings already say is left out.
func MergeSpec(out diag.List, specFile string, hosts []SpecHost, compiled diag.List) diag.List {
	said := map[string]bool{} // spec codes already reported
	for _, f := range out {
		said[f.Code] = true
	}
	byName := make(map[string]SpecHost, len(hosts))
	for _, h := range hosts {
		if _, dup := byName[h.Name]; !dup {
			byName[h.Name] = h
		}
	}
	for _, f := range compiled {
		if h, ok := byName[f.File]; ok {
			if spc, ok := sameAsSpec[f.Code]; ok && (spc == "" || said[spc]) {
				continue // the spec's own finding says it, and says it better
			}
			f.Message = "compiled config of " + h.Name + ": " + f.Message
			f.File, f.Line = specFile, h.Line
		}
		out = append(out, f)
	}
	return out
}
