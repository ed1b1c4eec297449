package spec

import "fmt"

// GroupText is a policy group as text: its name and its members as
// ParseTerm reads them.
type GroupText struct {
	Name    string
	Members []string
}

// ParsePolicy reads a policy given as text (a controller's wire and stored
// form): each group member through ParseTerm, each rule through ParseRule.
// It is Present when it says anything. Errors name the group or rule.
func ParsePolicy(def string, groups []GroupText, rules []string) (Policy, error) {
	p := Policy{Present: def != "" || len(groups) > 0 || len(rules) > 0, Default: def}
	for _, g := range groups {
		sg := Group{Name: g.Name}
		for j, m := range g.Members {
			t, err := ParseTerm(m)
			if err != nil {
				return p, fmt.Errorf("policy.groups.%s[%d]: %w", g.Name, j, err)
			}
			sg.Members = append(sg.Members, t)
		}
		p.Groups = append(p.Groups, sg)
	}
	for i, text := range rules {
		r, err := ParseRule(text)
		if err != nil {
			return p, fmt.Errorf("policy.rules[%d]: %w", i, err)
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}
