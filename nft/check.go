package nft

import (
	"fmt"
	"strings"
)

// Difference is one way the kernel's table differs from the intent's.
type Difference struct {
	What    string // as the nft command that adds it, or names it
	Why     string
	Missing bool // the intent calls for it; else the kernel has it unasked
}

// Compare lists how the kernel's table k (nil: absent) differs from
// want: chains, their rules in order, sets and, with elems, elements.
func Compare(k *Kernel, want *Table, elems bool) []Difference {
	if want == nil {
		if k == nil {
			return nil
		}
		return []Difference{{What: "table " + string(k.Family) + " " + k.Name, Why: "no network calls for it"}}
	}
	where := string(want.Family) + " " + want.Name
	if k == nil {
		return []Difference{{What: "table " + where, Why: "minidocker-net's table", Missing: true}}
	}
	var out []Difference
	for _, s := range want.Sets {
		ks := k.Sets[s.Name]
		if ks == nil {
			out = append(out, Difference{What: s.keyword() + " " + where + " " + s.Name, Why: s.Why, Missing: true})
			continue
		}
		if !elems {
			continue
		}
		have := map[string]bool{}
		for _, e := range ks.Elems {
			have[e.String()] = true
		}
		wanted := map[string]bool{}
		for _, e := range s.Elems {
			wanted[e.String()] = true
			if !have[e.String()] {
				out = append(out, Difference{What: "element " + where + " " + s.Name + " { " + e.String() + " }", Why: e.Why, Missing: true})
			}
		}
		for _, e := range ks.Elems {
			if !wanted[e.String()] {
				out = append(out, Difference{What: "element " + where + " " + s.Name + " { " + e.String() + " }", Why: "not in the records"})
			}
		}
	}
	for name := range k.Sets {
		if want.set(name) == nil {
			out = append(out, Difference{What: "set " + where + " " + name, Why: "not in the records"})
		}
	}
	for _, c := range want.Chains {
		kc := k.chain(c.Name)
		if kc == nil {
			out = append(out, Difference{What: "chain " + where + " " + c.Name, Why: "minidocker-net's chain", Missing: true})
			continue
		}
		if c.Base != nil && (kc.Base == nil || kc.Base.Decl() != c.Base.Decl()) {
			out = append(out, Difference{What: "chain " + where + " " + c.Name + " " + c.Base.Decl(), Why: "the base chain's hook or policy", Missing: true})
		}
		out = append(out, compareRules(where, c, kc, want.Family)...)
	}
	for _, kc := range k.Chains {
		if want.chain(kc.Name) == nil {
			out = append(out, Difference{What: "chain " + where + " " + kc.Name, Why: "not in the records"})
		}
	}
	return out
}

// compareRules lists the rules of c the kernel's chain lacks, those it
// has that nobody asked for, and rules out of order.
func compareRules(where string, c *Chain, kc *KChain, f Family) []Difference {
	var out []Difference
	have := map[string]bool{}
	for _, r := range kc.Rules {
		if r.Rule != nil {
			have[r.Rule.Text(f)] = true
		} else {
			out = append(out, Difference{What: fmt.Sprintf("rule %s %s handle %d", where, c.Name, r.Handle), Why: "not in the records: added by hand, or left over"})
		}
	}
	var order []string
	for _, r := range c.Rules {
		if !have[r.Text(f)] {
			out = append(out, Difference{What: "rule " + where + " " + c.Name + " " + r.Text(f), Why: r.Why, Missing: true})
		} else {
			order = append(order, r.Text(f))
		}
	}
	var got []string
	for _, r := range kc.Rules {
		if r.Rule != nil {
			got = append(got, r.Rule.Text(f))
		}
	}
	if strings.Join(got, "\n") != strings.Join(order, "\n") {
		out = append(out, Difference{What: "chain " + where + " " + c.Name, Why: "its rules are out of order", Missing: true})
	}
	return out
}

// asTable is what the kernel holds as a Table of ours (the rules we
// know of, in order), and the chains that hold rules we do not.
func (k *Kernel) asTable() (*Table, map[string]bool) {
	if k == nil {
		return nil, nil
	}
	t := &Table{Family: k.Family, Name: k.Name}
	for _, s := range k.Sets {
		t.Sets = append(t.Sets, s)
	}
	unknown := map[string]bool{}
	for _, kc := range k.Chains {
		c := &Chain{Name: kc.Name, Base: kc.Base}
		for _, r := range kc.Rules {
			if r.Rule == nil {
				unknown[kc.Name] = true
				continue
			}
			c.Rules = append(c.Rules, *r.Rule)
		}
		t.Chains = append(t.Chains, c)
	}
	return t, unknown
}

// Repair is the diff that makes the kernel's table k what want is.
func Repair(k *Kernel, want *Table) *Diff {
	have, unknown := k.asTable()
	f, name := IPv4, TableName
	if want != nil {
		f, name = want.Family, want.Name
	} else if k != nil {
		f, name = k.Family, k.Name
	}
	d := Between(f, name, have, want)
	if want == nil || have == nil {
		return d
	}
	for _, c := range want.Chains {
		if !unknown[c.Name] {
			continue
		}
		found := false
		for _, ch := range d.Chains {
			found = found || ch.New != nil && ch.New.Name == c.Name
		}
		if !found {
			d.Chains = append(d.Chains, ChainChange{Old: have.chain(c.Name), New: c})
		}
	}
	return d
}
