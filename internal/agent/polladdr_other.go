//go:build !linux

package agent

import (
	"context"
	"errors"
)

// hostAddrChanges is Options.AddrChanges where the agent can't subscribe to
// the host's address changes: the long poll's address is checked every
// AddrPollEvery instead.
func hostAddrChanges(context.Context) (<-chan struct{}, error) {
	return nil, errors.ErrUnsupported
}
