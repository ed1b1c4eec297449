package storetest

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/wgnet/wgnet/internal/store"
)

// Spread returns a store.Store that sends each call to the next of ss in
// turn: several controller processes on one database. Close closes them all.
func Spread(ss ...store.Store) store.Store { return &spread{s: ss} }

type spread struct {
	s []store.Store
	n atomic.Uint64
}

func (p *spread) next() store.Store { return p.s[p.n.Add(1)%uint64(len(p.s))] }

func (p *spread) CreateNetwork(ctx context.Context, n store.Network) (store.Network, error) {
	return p.next().CreateNetwork(ctx, n)
}
func (p *spread) Network(ctx context.Context, name string) (store.Network, error) {
	return p.next().Network(ctx, name)
}
func (p *spread) Networks(ctx context.Context) ([]store.Network, error) {
	return p.next().Networks(ctx)
}
func (p *spread) DeleteNetwork(ctx context.Context, name string) error {
	return p.next().DeleteNetwork(ctx, name)
}
func (p *spread) AddHost(ctx context.Context, n string, h store.Host, v store.Validate) (store.Host, uint64, error) {
	return p.next().AddHost(ctx, n, h, v)
}
func (p *spread) SetHost(ctx context.Context, n, name string, c store.HostChanges, v store.Validate) (store.Host, uint64, error) {
	return p.next().SetHost(ctx, n, name, c, v)
}
func (p *spread) RemoveHost(ctx context.Context, n, name string) (uint64, error) {
	return p.next().RemoveHost(ctx, n, name)
}
func (p *spread) Hosts(ctx context.Context, n string) (store.Network, []store.Host, error) {
	return p.next().Hosts(ctx, n)
}
func (p *spread) HostsAndLog(ctx context.Context, n string, since uint64, last int) (store.Network, []store.Host, []store.Change, error) {
	return p.next().HostsAndLog(ctx, n, since, last)
}
func (p *spread) Changes(ctx context.Context, n string, since uint64, limit int) ([]store.Change, error) {
	return p.next().Changes(ctx, n, since, limit)
}
func (p *spread) CreateToken(ctx context.Context, t store.Token) error {
	return p.next().CreateToken(ctx, t)
}
func (p *spread) SetPolicy(ctx context.Context, n string, policy []byte, ifRevision uint64) (uint64, error) {
	return p.next().SetPolicy(ctx, n, policy, ifRevision)
}
func (p *spread) RevokeToken(ctx context.Context, h store.TokenHash) error {
	return p.next().RevokeToken(ctx, h)
}
func (p *spread) AdminTokens(ctx context.Context) ([]store.TokenHash, error) {
	return p.next().AdminTokens(ctx)
}
func (p *spread) FirstAdminToken(ctx context.Context, h store.TokenHash) (bool, error) {
	return p.next().FirstAdminToken(ctx, h)
}
func (p *spread) UseToken(ctx context.Context, h store.TokenHash, now time.Time) (store.Token, error) {
	return p.next().UseToken(ctx, h, now)
}
func (p *spread) Enroll(ctx context.Context, h store.TokenHash, now time.Time, host store.Host, v store.Validate, cred store.TokenHash) (store.Token, store.Host, uint64, error) {
	return p.next().Enroll(ctx, h, now, host, v, cred)
}
func (p *spread) WaitRevision(ctx context.Context, n string, after uint64) (uint64, error) {
	return p.next().WaitRevision(ctx, n, after)
}
func (p *spread) LookupToken(ctx context.Context, h store.TokenHash) (store.Token, error) {
	return p.next().LookupToken(ctx, h)
}
func (p *spread) Audit(ctx context.Context, since uint64, limit int) ([]store.AuditEntry, error) {
	return p.next().Audit(ctx, since, limit)
}
func (p *spread) ReportStatus(ctx context.Context, b []store.StatusReport) (int, error) {
	return p.next().ReportStatus(ctx, b)
}
func (p *spread) Status(ctx context.Context, n string) ([]store.HostStatus, error) {
	return p.next().Status(ctx, n)
}
func (p *spread) Tokens(ctx context.Context) ([]store.Token, error) { return p.next().Tokens(ctx) }
func (p *spread) CA(ctx context.Context) (store.StoredCA, error)    { return p.next().CA(ctx) }
func (p *spread) PutCA(ctx context.Context, ca store.StoredCA) (store.StoredCA, error) {
	return p.next().PutCA(ctx, ca)
}
func (p *spread) Health(ctx context.Context) (store.Health, error) { return p.next().Health(ctx) }
func (p *spread) Close() error {
	var errs []error
	for _, s := range p.s {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
