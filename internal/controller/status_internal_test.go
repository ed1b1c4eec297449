package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// TestReportedErrorOneLine: a resolver error an agent reports is kept as
// one printable line of at most 300 bytes (and "..."), whatever it holds.
func TestReportedErrorOneLine(t *testing.T) {
	since := time.Now().UTC().Format(time.RFC3339)
	for _, tc := range []struct{ in, want string }{
		{"no such host", "no such host"},
		{"lookup h.test\n\x1b[2Jhost s9: up", "lookup h.test??[2Jhost s9: up"},
		{strings.Repeat("é", 200), strings.Repeat("é", 150) + "..."},
	} {
		ps, err := peerStatus(wgkey.Key{1}, api.PeerStatus{Unresolved: &api.UnresolvedEndpoint{Host: "h.test", Error: tc.in, Since: since}})
		if err != nil || ps.ResolveError != tc.want {
			t.Errorf("error %q kept as %q, %v; want %q", tc.in, ps.ResolveError, err, tc.want)
		}
	}
}
