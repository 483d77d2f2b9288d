package iptables

import (
	"strings"

	"github.com/minidocker-net/minidocker-net/plan"
)

// Removal is everything of ours in a ruleset, found by name: the jumps
// from other chains into MINIDOCKER* chains, and those chains. It is
// reset's step, and reset is not undone.
type Removal struct {
	Family string   `json:"family,omitempty"`
	Script string   `json:"script"`
	Cmds   []string `json:"cmds"`
}

func init() { plan.Register("iptables-remove", func() plan.Step { return &Removal{} }) }

func (r *Removal) Kind() string             { return "iptables-remove" }
func (r *Removal) Commands() []string       { return r.Cmds }
func (r *Removal) UndoCommands() []string   { return []string{"# reset is not undone"} }
func (r *Removal) Undo(*plan.Context) error { return nil }

// FindOwned plans the removal of every rule and chain minidocker-net owns,
// whatever the records say; policy, when set, is put back on FORWARD.
func FindOwned(rs *Ruleset, policy string) *Removal {
	r := &Removal{Family: familyField(rs.Family)}
	tool := rs.Family.tool()
	var script strings.Builder
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
					r.Cmds = append(r.Cmds, tool+" -t "+table+" -D "+c+" "+spec)
				}
			}
		}
		// Flush them all before deleting any: they jump to each other.
		for _, c := range ours {
			lines = append(lines, "-F "+c)
			r.Cmds = append(r.Cmds, tool+" -t "+table+" -F "+c)
		}
		for _, c := range ours {
			lines = append(lines, "-X "+c)
			r.Cmds = append(r.Cmds, tool+" -t "+table+" -X "+c)
		}
		if table == "filter" && policy != "" && rs.Policy("filter", "FORWARD") != policy {
			lines = append(lines, "-P FORWARD "+policy)
			r.Cmds = append(r.Cmds, tool+" -P FORWARD "+policy)
		}
		if len(lines) > 0 {
			script.WriteString("*" + table + "\n" + strings.Join(lines, "\n") + "\nCOMMIT\n")
		}
	}
	r.Script = script.String()
	return r
}

// Apply removes it all with one iptables-restore.
func (r *Removal) Apply(ctx *plan.Context) error {
	f := FamilyNamed(r.Family)
	ForgetRuleset(ctx, f)
	defer ForgetRuleset(ctx, f)
	if r.Script == "" {
		return nil
	}
	return restore(f, r.Script)
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
