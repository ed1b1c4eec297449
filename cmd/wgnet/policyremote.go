package main

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/spec"
)

// policyRemote are the --controller flags of `wgnet policy`: with them, the
// verbs edit a controller network's policy instead of the spec's.
var policyRemote remoteFlags

// editRemotePolicy reads the network's policy, applies edit and writes it
// back guarded by the revision it read; when another change came in between
// (409) it reads and applies again, a few times.
func editRemotePolicy(c *cobra.Command, edit func(p *api.Policy) error) error {
	if policyRemote.network == "" {
		return usageError{errors.New("--controller needs --network NAME")}
	}
	cl, err := policyRemote.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx := c.Context()
	for try := 0; ; try++ {
		p, err := cl.Policy(ctx, policyRemote.network)
		if err != nil {
			return err
		}
		if err := edit(&p); err != nil {
			return usageError{fmt.Errorf("policy: %w", err)}
		}
		_, err = cl.SetPolicy(ctx, policyRemote.network, p)
		var ce *client.Error
		if try < 4 && errors.As(err, &ce) && ce.Status == http.StatusConflict {
			continue
		}
		return err
	}
}

// listedPolicy is the policy `policy list` shows: the spec's, or with
// --controller the controller network's, in the spec's form.
func listedPolicy(c *cobra.Command) (spec.Policy, error) {
	if policyRemote.controller == "" {
		s, err := loadSpecShared(global.specFile)
		if err != nil {
			return spec.Policy{}, err
		}
		return s.Policy, nil
	}
	if policyRemote.network == "" {
		return spec.Policy{}, usageError{errors.New("--controller needs --network NAME")}
	}
	cl, err := policyRemote.client()
	if err != nil {
		return spec.Policy{}, err
	}
	defer cl.Close()
	ap, err := cl.Policy(c.Context(), policyRemote.network)
	if err != nil {
		return spec.Policy{}, err
	}
	groups := make([]spec.GroupText, len(ap.Groups))
	for i, g := range ap.Groups {
		groups[i] = spec.GroupText(g)
	}
	p, err := spec.ParsePolicy(ap.Default, groups, ap.Rules)
	if err != nil {
		return p, fmt.Errorf("the controller's policy: %w", err)
	}
	return p, nil
}

// addRule inserts rule at index at (-1: at the end), as Document.AddPolicyRule does.
func addRule(p *api.Policy, rule string, at int) error {
	switch {
	case at < 0:
		p.Rules = append(p.Rules, rule)
	case at > len(p.Rules):
		return fmt.Errorf("--at %d: the policy has %d rules", at+1, len(p.Rules))
	default:
		p.Rules = slices.Insert(p.Rules, at, rule)
	}
	return nil
}

// removeRule removes rule i and returns its text.
func removeRule(p *api.Policy, i int) (string, error) {
	if i < 0 || i >= len(p.Rules) {
		return "", fmt.Errorf("no rule %d: the policy has %d rules", i+1, len(p.Rules))
	}
	text := p.Rules[i]
	p.Rules = slices.Delete(p.Rules, i, i+1)
	return text, nil
}

// setGroup defines group name with members, or removes it when there are none.
func setGroup(p *api.Policy, name string, members []string) error {
	i := slices.IndexFunc(p.Groups, func(g api.PolicyGroup) bool { return g.Name == name })
	switch {
	case len(members) == 0 && i < 0:
		return fmt.Errorf("no group %s", name)
	case len(members) == 0:
		p.Groups = slices.Delete(p.Groups, i, i+1)
	case i < 0:
		p.Groups = append(p.Groups, api.PolicyGroup{Name: name, Members: members})
	default:
		p.Groups[i].Members = members
	}
	return nil
}
