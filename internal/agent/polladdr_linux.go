package agent

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
)

// hostAddrChanges is Options.AddrChanges on Linux: a netlink subscription
// to the address changes of the network namespace of the calling thread (the
// agent's: the host's); a value on the channel for each address removed
// (RTM_DELADDR; values coalesce while one is unread). The subscription and
// its goroutine end with ctx, or when the socket fails; the channel is then
// closed.
func hostAddrChanges(ctx context.Context) (<-chan struct{}, error) {
	updates := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	if err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{}); err != nil {
		close(done)
		return nil, fmt.Errorf("subscribe to the host's address changes (netlink): %w", err)
	}
	out := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, func() { close(done) }) // closes the socket: updates ends
	go func() {
		defer close(out)
		for u := range updates {
			if !u.NewAddr {
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
		if stop() { // the socket failed before ctx ended
			close(done)
		}
	}()
	return out, nil
}
