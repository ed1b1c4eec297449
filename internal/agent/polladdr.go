package agent

import (
	"context"
	"errors"
	"net/http/httptrace"
	"net/netip"
	"slices"
	"time"
)

// errAddrGone is a long poll stopped because the host lost the address it
// was sent from: the answer would never arrive.
var errAddrGone = errors.New("the long poll's local address is gone from this host")

// watchPollAddr checks the long poll's local address against the host's
// each time the host loses an address (Options.AddrChanges: a netlink
// subscription on Linux), or every AddrPollEvery where the host's address
// changes can't be followed; it returns when ctx is done. A subscription
// that ends early is made again.
func (a *Agent) watchPollAddr(ctx context.Context) {
	for ctx.Err() == nil {
		changes, err := a.opts.AddrChanges(ctx)
		if err != nil {
			a.opts.Log.Info("the host's address changes can't be followed: the long poll's local address is checked periodically instead", "every", a.opts.AddrPollEvery, "err", err)
			a.pollAddrEvery(ctx)
			return
		}
		a.checkPollAddr(false) // an address lost before the subscription
		for range changes {
			a.checkPollAddr(true)
		}
		if ctx.Err() == nil {
			a.opts.Log.Warn("the subscription to the host's address changes ended: subscribing again")
			a.checkPollAddr(false)
			if sleep(ctx, a.opts.AddrPollEvery) != nil {
				return
			}
		}
	}
}

// pollAddrEvery checks the long poll's local address every AddrPollEvery
// until ctx is done.
func (a *Agent) pollAddrEvery(ctx context.Context) {
	tick := time.NewTicker(a.opts.AddrPollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			a.checkPollAddr(false)
		}
	}
}

// gotPollConn learns the long poll's local address when its connection is
// known, and checks it when the host lost an address meanwhile (the
// connection may be an idle one from that address).
func (a *Agent) gotPollConn(i httptrace.GotConnInfo) {
	ap, err := netip.ParseAddrPort(i.Conn.LocalAddr().String())
	if err != nil {
		return
	}
	a.mu.Lock()
	a.pollLocal = ap.Addr().WithZone("").Unmap()
	lost := a.addrLost
	a.addrLost = false
	a.mu.Unlock()
	if lost {
		a.checkPollAddr(false)
	}
}

// checkPollAddr stops the long poll in flight when the address it was sent
// from is no longer on the host (the underlay moved): its answer would never
// arrive, and the agent would hear of changes only when it times out. lost
// says the host has just lost an address: with no poll's address known, the
// next one is checked when it is (gotPollConn).
func (a *Agent) checkPollAddr(lost bool) {
	a.mu.Lock()
	local, cancel := a.pollLocal, a.pollCancel
	if lost && (!local.IsValid() || cancel == nil) {
		a.addrLost = true
	}
	a.mu.Unlock()
	if !local.IsValid() || cancel == nil {
		return
	}
	addrs, err := a.opts.LocalAddrs()
	// (Every loopback address is the host's while it has one: 127.0.0.0/8.)
	if err != nil || slices.Contains(addrs, local) || (local.IsLoopback() && slices.ContainsFunc(addrs, netip.Addr.IsLoopback)) {
		return
	}
	a.opts.Log.Info("the long poll's local address is gone from this host: polling again now", "address", local)
	cancel(errAddrGone)
}
