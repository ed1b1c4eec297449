package layering

// Rules maps every package of the module (by path below the module) to the
// wgnet packages it may import. Dependencies point one way: cmd → lab/up →
// compile/devconf → intent/spec → wgconf → wgkey. A package missing here fails
// the test: a new package states its place when it is added.
var Rules = map[string][]string{
	// Leaves: no wgnet imports.
	"internal/wgkey":      nil,
	"internal/atomicfile": nil,
	"internal/trust":      nil,
	"internal/ipam":       nil,
	"internal/prefixset":  nil,
	"internal/hostnet":    {"internal/iptables"},
	"internal/iptables":   nil, // iptables-restore input, iptables-save output, the programs run
	"internal/netnstest":  nil,
	"internal/layering":   nil,
	"internal/diag":       nil, // the one diagnostic type and code table
	"internal/inputfile":  nil, // the capped, cancellable reader of specs and configs

	// The file format and the typed intent it renders.
	"internal/wgconf": {"internal/diag", "internal/wgkey"},
	"internal/intent": {"internal/wgconf", "internal/wgkey"},

	// The offline core.
	"internal/spec":              {"internal/atomicfile", "internal/diag", "internal/inputfile", "internal/ipam", "internal/trust", "internal/wgconf", "internal/wgkey"},
	"internal/compile":           {"internal/intent", "internal/policy", "internal/spec", "internal/wgconf", "internal/wgkey"},
	"internal/importer":          {"internal/compile", "internal/diag", "internal/intent", "internal/netmodel", "internal/spec", "internal/wgconf", "internal/wgkey"},
	"internal/netmodel":          {"internal/intent", "internal/prefixset", "internal/wgconf", "internal/wgkey"},
	"internal/policy":            {"internal/diag", "internal/intent", "internal/spec"},
	"internal/policy/policytest": {"internal/policy", "internal/spec"},
	"internal/check":             {"internal/diag", "internal/inputfile", "internal/intent", "internal/netmodel", "internal/prefixset", "internal/wgconf", "internal/wgkey"},

	// The data plane: never the spec, the compiler, the lab or a controller.
	"internal/spawn":                 {"internal/atomicfile", "internal/trust"},
	"internal/device":                {"internal/spawn", "internal/wgkey"},
	"internal/device/devicetest":     {"internal/device", "internal/wgkey"},
	"internal/hostnet/hostnettest":   {"internal/hostnet"},
	"internal/devconf":               {"internal/device", "internal/intent", "internal/wgconf", "internal/wgkey"},
	"internal/dockerfw":              {"internal/iptables"},
	"internal/dockerfw/dockerfwtest": {"internal/dockerfw"},
	"internal/up":                    {"internal/atomicfile", "internal/devconf", "internal/device", "internal/dockerfw", "internal/hostnet", "internal/intent", "internal/spawn", "internal/trust", "internal/wgconf", "internal/wgkey"},
	"internal/live":                  {"internal/device", "internal/diag", "internal/dockerfw", "internal/hostnet", "internal/iptables", "internal/wgkey"},

	// The whole network in one process.
	"internal/lab": {"internal/compile", "internal/devconf", "internal/device", "internal/intent", "internal/netmodel", "internal/policy", "internal/spec", "internal/wgconf", "internal/wgkey"},

	// The controller's state: the store interface, its conformance suite and
	// its implementations; never spec, compile or HTTP.
	"internal/store":             {"internal/ipam", "internal/wgkey"},
	"internal/store/storetest":   {"internal/store", "internal/wgkey"},
	"internal/store/sqlitestore": {"internal/store", "internal/wgkey"},
	"internal/store/pgstore":     {"internal/store", "internal/wgkey"},

	// The controller: wire types, the server (the offline packages check and
	// compile every change; no store implementation, the command picks one)
	// and the admin client (wire types only).
	"internal/api":        nil,
	"internal/controller": {"internal/api", "internal/atomicfile", "internal/check", "internal/compile", "internal/diag", "internal/intent", "internal/spec", "internal/store", "internal/wgconf", "internal/wgkey"},
	"internal/client":     {"internal/api"},
	// The agent: a host following its network (the data plane through up).
	"internal/agent": {"internal/api", "internal/atomicfile", "internal/client", "internal/device", "internal/intent", "internal/trust", "internal/up", "internal/wgconf", "internal/wgkey"},

	// Test harnesses.
	"internal/vmtest": {"internal/netnstest"},
	"internal/pgtest": {"internal/netnstest"},

	// The command wires everything; it may import any wgnet package.
	"cmd/wgnet": {"*"},
}

// Pure lists the packages that must stay pure functions of their inputs: no
// file system, processes, sockets, clock or randomness. Their standard-library
// imports are checked against Impure, and their code for reading the clock
// (Clock: time is imported for durations).
var Pure = []string{"internal/compile", "internal/policy", "internal/diag", "internal/intent", "internal/devconf", "internal/ipam", "internal/netmodel", "internal/prefixset", "internal/wgconf"}

// Impure are the standard-library packages a pure package must not import.
var Impure = []string{"os", "os/exec", "syscall", "net", "io/fs", "crypto/rand", "math/rand", "math/rand/v2"}

// Clock are the functions of package time that read or wait on the clock.
var Clock = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"}
