package iptables

import (
	"slices"
	"strings"

	"github.com/minidocker-net/minidocker-net/plan"
)

// Layout returns the ruleset that applying rules to an empty host gives:
// what each of our chains must hold, in order.
func Layout(rules []Rule) *Ruleset {
	c := Diff(nil, rules)
	c.NewChains = BaseChains
	rs := &Ruleset{Tables: map[string]*Table{}}
	for _, s := range c.Steps(rs) {
		for _, o := range s.(*RulesStep).Ops {
			rs.apply(o.Table, o.Op)
		}
	}
	return rs
}

// Rebuild repairs the ruleset: missing chains are created, every chain of
// ours whose content differs from the records is flushed and refilled in
// order, missing jumps from built-in chains are put back, and the FORWARD
// policy is set. MINIDOCKER-USER belongs to the admin and is left alone.
// A repair is not undone.
type Rebuild struct {
	Family string   `json:"family,omitempty"`
	Script string   `json:"script"`
	Cmds   []string `json:"cmds"`
}

func init() { plan.Register("iptables-rebuild", func() plan.Step { return &Rebuild{} }) }

func (s *Rebuild) Kind() string             { return "iptables-rebuild" }
func (s *Rebuild) Commands() []string       { return s.Cmds }
func (s *Rebuild) UndoCommands() []string   { return []string{"# a repair is not undone"} }
func (s *Rebuild) Undo(*plan.Context) error { return nil }

func (s *Rebuild) Apply(ctx *plan.Context) error {
	f := FamilyNamed(s.Family)
	ForgetRuleset(ctx, f)
	return restore(f, s.Script)
}

// PlanRebuild compares the kernel's ruleset with the rules the records call
// for and returns the repair, or nil when nothing differs.
func PlanRebuild(rs *Ruleset, desired []Rule, policy string) *Rebuild {
	if len(desired) == 0 {
		return nil
	}
	want := Layout(desired)
	top := map[string]bool{}
	for _, r := range desired {
		if r.Top {
			top[r.Key()] = true
		}
	}
	r := &Rebuild{Family: familyField(rs.Family)}
	var b strings.Builder
	for _, table := range Tables {
		var lines []string
		line := func(l string) {
			lines = append(lines, l)
			r.Cmds = append(r.Cmds, rs.Family.tool()+" -t "+table+" "+l)
		}
		for _, c := range BaseChains[table] {
			if !rs.HasChain(table, c) {
				line("-N " + c)
			}
		}
		for _, c := range BaseChains[table] {
			if c == ChainUser {
				continue
			}
			// Everyday commands leave rules in orders of their own; only a
			// chain whose rules differ is rebuilt.
			have, need := rs.RulesIn(table, c), want.RulesIn(table, c)
			if sameSet(have, need) {
				continue
			}
			if len(have) > 0 {
				line("-F " + c)
			}
			for _, l := range need {
				line(l)
			}
		}
		var tops []string
		for _, c := range builtin[table] {
			for _, l := range want.RulesIn(table, c) {
				if slices.Contains(rs.RulesIn(table, c), l) {
					continue
				}
				if top[table+" "+l] {
					tops = append(tops, "-I "+c+" 1 "+strings.SplitN(l, " ", 3)[2])
				} else {
					line(l)
				}
			}
		}
		slices.Reverse(tops)
		for _, l := range tops {
			line(l)
		}
		if table == "filter" && policy != "" && rs.Policy("filter", "FORWARD") != policy {
			line("-P FORWARD " + policy)
		}
		if len(lines) > 0 {
			b.WriteString("*" + table + "\n" + strings.Join(lines, "\n") + "\nCOMMIT\n")
		}
	}
	if b.Len() == 0 {
		return nil
	}
	r.Script = b.String()
	return r
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
