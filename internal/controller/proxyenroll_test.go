package controller_test

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/controller"
)

// TestEnrollBehindProxy: a controller behind a TCP balancer that sends the
// PROXY protocol records, for a host enrolling with endpoint_port, the
// client's address from the header, not the balancer's.
func TestEnrollBehindProxy(t *testing.T) {
	ctx := context.Background()
	f := startWith(t, controller.ProxyListener)
	url, tok, hash := f.url, f.token, f.hash
	// The "balancer": every connection starts with a PROXY header naming the client.
	tr, err := client.Transport(hash)
	if err != nil {
		t.Fatal(err)
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_, err = fmt.Fprintf(c, "PROXY TCP4 198.18.9.9 %s 40000 7443\r\n", c.RemoteAddr().(*net.TCPAddr).IP)
		}
		return c, err
	}
	admin, err := client.New(client.Options{URL: url, Token: tok, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.CreateNetwork(ctx, api.CreateNetwork{Name: "p", Subnets: []string{"10.66.0.0/24"}, Topology: "mesh"}); err != nil {
		t.Fatal(err)
	}
	jt, err := admin.CreateToken(ctx, "p", api.CreateToken{})
	if err != nil {
		t.Fatal(err)
	}
	_, key := pub(t)
	e, err := client.EnrollVia(ctx, jt.Token, api.Host{Name: "behind", PublicKey: key, EndpointPort: 51820}, tr)
	if err != nil {
		t.Fatal(err)
	}
	if e.Host.Endpoint != "198.18.9.9:51820" {
		t.Errorf("endpoint recorded behind the balancer = %q, want the PROXY header's client 198.18.9.9 with port 51820", e.Host.Endpoint)
	}
}
