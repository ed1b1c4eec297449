//go:build !linux

package live

import (
	"context"
	"errors"
	"net/netip"
)

var errUnsupported = errors.New("live checks need Linux")

// System is the Prober of the host wgnet runs on; only Linux has one.
type System struct{}

func (System) RouteGet(netip.Addr, int) (Route, error)             { return Route{}, errUnsupported }
func (System) Ruleset(context.Context) (Ruleset, error)            { return Ruleset{}, errUnsupported }
func (System) Ping(context.Context, netip.Addr, int) (bool, error) { return false, errUnsupported }
func (System) LookupHost(context.Context, string) ([]netip.Addr, error) {
	return nil, errUnsupported
}
