//go:build !linux

package hostnet

import (
	"errors"
	"net/netip"
)

var errUnsupported = errors.New("hostnet: not supported on this operating system")

// Linux is the HostNet of Linux; elsewhere every method fails.
type Linux struct {
	SysctlRoot    string
	TunnelBackend string
	TableBackend  string
}

// New returns a HostNet whose every method fails on this operating system.
func New() *Linux { return &Linux{} }

var _ HostNet = (*Linux)(nil)

func (*Linux) Links() ([]Link, error)                        { return nil, errUnsupported }
func (*Linux) Link(string) (Link, error)                     { return Link{}, errUnsupported }
func (*Linux) SetMTU(string, int) error                      { return errUnsupported }
func (*Linux) SetUp(string, bool) error                      { return errUnsupported }
func (*Linux) Addrs(string) ([]netip.Prefix, error)          { return nil, errUnsupported }
func (*Linux) AddAddr(string, netip.Prefix) error            { return errUnsupported }
func (*Linux) DelAddr(string, netip.Prefix) error            { return errUnsupported }
func (*Linux) Routes(string, int) ([]Route, error)           { return nil, errUnsupported }
func (*Linux) AddRoute(Route) error                          { return errUnsupported }
func (*Linux) DelRoute(Route) error                          { return errUnsupported }
func (*Linux) AddRoutes([]Route) error                       { return errUnsupported }
func (*Linux) DelRoutes([]Route) error                       { return errUnsupported }
func (*Linux) RouteMTU(netip.Addr) (int, error)              { return 0, errUnsupported }
func (*Linux) Sysctl(string) (string, error)                 { return "", errUnsupported }
func (*Linux) SetSysctl(string, string) error                { return errUnsupported }
func (*Linux) FirewallBackend() (string, error)              { return "", errUnsupported }
func (*Linux) ApplyFirewall(Firewall) error                  { return errUnsupported }
func (*Linux) Firewall(string) (Firewall, error)             { return Firewall{}, errUnsupported }
func (*Linux) DeleteFirewall(string) error                   { return errUnsupported }
func (*Linux) ForgetFlows(func(Flow) bool) (int, error)      { return 0, errUnsupported }
func (*Linux) Rules(int) ([]Rule, error)                     { return nil, errUnsupported }
func (*Linux) AddRule(Rule) error                            { return errUnsupported }
func (*Linux) DelRule(Rule) error                            { return errUnsupported }
func (*Linux) TableInUse(int) (bool, error)                  { return false, errUnsupported }
func (*Linux) TunnelFirewallBackend() (string, error)        { return "", errUnsupported }
func (*Linux) ApplyTunnelFirewall(TunnelFirewall) error      { return errUnsupported }
func (*Linux) TunnelFirewall(string) (TunnelFirewall, error) { return TunnelFirewall{}, errUnsupported }
func (*Linux) DeleteTunnelFirewall(string) error             { return errUnsupported }
