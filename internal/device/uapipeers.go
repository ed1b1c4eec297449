package device

import (
	"fmt"
	"strings"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// PeerReader is implemented by devices that can read back single peers: wgnet's
// own daemon (the UAPI operation peersOp) and an in-process device. Neither
// the UAPI's get nor the kernel's generic netlink can; reading one changed peer
// of ten thousand back is then a full read. A daemon that turns out not to
// understand it makes PeerStates fail with an error wrapping
// errors.ErrUnsupported: read the whole State instead.
type PeerReader interface {
	// PeerStates reads the device's own fields (key, port, fwmark) and the
	// peers with these keys, in the device's order; a key the device has no
	// peer for is left out. Counters and handshakes are as State gives them.
	PeerStates(keys []wgkey.Key) (*State, error)
}

// PeerStates reads back the peers with keys (see PeerReader).
func (e *Embedded) PeerStates(keys []wgkey.Key) (*State, error) {
	s, err := e.dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", e.name, err)
	}
	st, err := decodeUAPI(onlyPeers(s, hexSet(keys)))
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", e.name, err)
	}
	st.Name, st.Backend = e.name, e.backend
	return st, nil
}

func hexSet(keys []wgkey.Key) map[string]bool {
	set := make(map[string]bool, len(keys))
	for _, k := range keys {
		set[k.Hex()] = true
	}
	return set
}

// onlyPeers cuts a get answer down to the device's lines and the peers whose
// hex public key is in keep.
func onlyPeers(get string, keep map[string]bool) string {
	var b strings.Builder
	in := true // before the first peer, or in a peer kept
	for rest := get; rest != ""; {
		line, after, _ := strings.Cut(rest, "\n")
		rest = after
		if k, ok := strings.CutPrefix(line, "public_key="); ok {
			in = keep[k]
		}
		if in {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
