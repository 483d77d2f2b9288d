package iptables

import (
	"strings"
)

// Removal is everything of ours in a ruleset, found by name: the jumps
// from other chains into MINIDOCKER* chains, and those chains.
type Removal struct {
	script   strings.Builder
	Commands []string
}

// FindOwned plans the removal of every rule and chain minidocker-net owns,
// whatever the records say; policy, when set, is put back on FORWARD.
func FindOwned(rs *Ruleset, policy string) *Removal {
	r := &Removal{}
	for _, table := range Tables {
		t := rs.Tables[table]
		if t == nil {
			continue
		}
		var lines []string
		var ours []string
		for _, c := range t.Chains {
			if strings.HasPrefix(c, Prefix) {
				ours = append(ours, c)
				continue
			}
			for _, l := range t.Rules[c] {
				if strings.Contains(l, "-j "+Prefix) {
					spec := strings.SplitN(l, " ", 3)[2]
					lines = append(lines, "-D "+c+" "+spec)
					r.Commands = append(r.Commands, "iptables -t "+table+" -D "+c+" "+spec)
				}
			}
		}
		// Flush them all before deleting any: they jump to each other.
		for _, c := range ours {
			lines = append(lines, "-F "+c)
			r.Commands = append(r.Commands, "iptables -t "+table+" -F "+c)
		}
		for _, c := range ours {
			lines = append(lines, "-X "+c)
			r.Commands = append(r.Commands, "iptables -t "+table+" -X "+c)
		}
		if table == "filter" && policy != "" && rs.Policy("filter", "FORWARD") != policy {
			lines = append(lines, "-P FORWARD "+policy)
			r.Commands = append(r.Commands, "iptables -P FORWARD "+policy)
		}
		if len(lines) > 0 {
			r.script.WriteString("*" + table + "\n" + strings.Join(lines, "\n") + "\nCOMMIT\n")
		}
	}
	return r
}

// Apply removes it all with one iptables-restore.
func (r *Removal) Apply() error {
	if r.script.Len() == 0 {
		return nil
	}
	return restore(r.script.String())
}

// HoldsOurs reports whether a table has a chain of ours or a rule that
// jumps into one.
func (t *Table) HoldsOurs() bool {
	for _, c := range t.Chains {
		if strings.HasPrefix(c, Prefix) {
			return true
		}
		for _, l := range t.Rules[c] {
			if strings.Contains(l, "-j "+Prefix) {
				return true
			}
		}
	}
	return false
}
