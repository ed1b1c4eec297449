package store

import (
	"context"
	"fmt"
)

// Dump is the whole content of a store, what `wgnet controller migrate`
// carries from one store to another: networks at their revisions with their
// hosts, change logs and status reports, every token (hashes only), the
// audit log. (The CA travels apart: the command seals it.)
type Dump struct {
	Networks []NetworkDump
	Tokens   []Token
	Audit    []AuditEntry
}

// NetworkDump is one network in a Dump.
type NetworkDump struct {
	Network Network
	Hosts   []Host
	Changes []Change
	Status  []HostStatus
}

// Importer is a store that takes a Dump into an empty database, in one
// transaction, keeping revisions, change logs and audit sequence numbers.
type Importer interface {
	Import(ctx context.Context, d Dump) error
}

// Export reads everything of st through the Store interface. Each network is
// read in its own transactions: export from a store nobody writes to (the
// controller stopped, or only reading); Export checks that each network's log
// ends at the revision its hosts were read at.
func Export(ctx context.Context, st Store) (Dump, error) {
	var d Dump
	ns, err := st.Networks(ctx)
	if err != nil {
		return d, err
	}
	for _, n := range ns {
		var nd NetworkDump
		if nd.Network, nd.Hosts, err = st.Hosts(ctx, n.Name); err != nil {
			return d, err
		}
		if nd.Changes, err = st.Changes(ctx, n.Name, 0, 0); err != nil {
			return d, err
		}
		if len(nd.Changes) == 0 || nd.Changes[len(nd.Changes)-1].Revision != nd.Network.Revision {
			return d, fmt.Errorf("network %s: %w: it changed while being read (stop the controller, or keep it from writing, during an export)", n.Name, ErrConflict)
		}
		if nd.Status, err = st.Status(ctx, n.Name); err != nil {
			return d, err
		}
		d.Networks = append(d.Networks, nd)
	}
	if d.Tokens, err = st.Tokens(ctx); err != nil {
		return d, err
	}
	d.Audit, err = st.Audit(ctx, 0, 0)
	return d, err
}
