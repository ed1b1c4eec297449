package lab

import (
	"fmt"
	"time"

	"github.com/wgnet/wgnet/internal/devconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Change is one difference between a device's running state and a desired config,
// as Configure applies it.
type Change struct {
	Peer wgkey.Key // zero for interface changes
	What string    // "add peer", "remove peer", "+allowed ip 10.0.9.0/24", ...
}

// changeList words the device changes for people: the private key first, then the
// peers that go, then those added or changed, in the config's order. It never
// shows a key other than public ones.
func changeList(d *devconf.Changes) []Change {
	var out []Change
	if d.PrivateKey != nil {
		out = append(out, Change{What: "set private key"})
	}
	for _, c := range d.Peers {
		if c.Op == devconf.Remove {
			out = append(out, Change{Peer: c.PublicKey, What: "remove peer"})
		}
	}
	for _, c := range d.Peers {
		add := func(what string) { out = append(out, Change{Peer: c.PublicKey, What: what}) }
		switch c.Op {
		case devconf.Add:
			add("add peer")
		case devconf.Update:
			if c.PresharedKey != nil {
				add("set preshared key")
			}
			if c.Endpoint != nil {
				add("endpoint " + c.Endpoint.New.String())
			}
			if c.PersistentKeepalive != nil {
				add(fmt.Sprintf("keepalive %d", c.PersistentKeepalive.New/time.Second))
			}
			for _, a := range c.RemoveAllowedIPs {
				add("-allowed ip " + a.String())
			}
			for _, a := range c.AddAllowedIPs {
				add("+allowed ip " + a.String())
			}
		}
	}
	return out
}
