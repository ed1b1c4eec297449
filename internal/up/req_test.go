package up

import (
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// req is the request for interface name from a wg-quick config read as `wgnet up
// FILE` reads it, with forwarding asked for as the compiler asks for it.
func req(name string, c *wgconf.Config, v4, v6 bool) Request {
	h, _ := intent.FromConfig(c)
	h.Forward.V4 = h.Forward.V4 || v4
	h.Forward.V6 = h.Forward.V6 || v6
	h.Firewall.ClampMSS = h.Forward.Any()
	return Request{Name: name, Host: h}
}
