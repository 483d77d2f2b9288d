package iptables

import (
	"strings"
	"testing"

	"github.com/minidocker-net/minidocker-net/plan"
)

// A change planned against an IPv6 ruleset is an ip6tables one, printed,
// journaled and undone as such.
func TestFamilyFlowsIntoSteps(t *testing.T) {
	rs := &Ruleset{Family: IPv6, Tables: map[string]*Table{}}
	c := Diff(nil, []Rule{{Table: "filter", Chain: ChainUser, Spec: "-j RETURN"}})
	c.NewChains = map[string][]string{"filter": {ChainUser}}
	steps := c.Steps(rs)
	if len(steps) != 1 {
		t.Fatalf("steps: %v", steps)
	}
	cmds := strings.Join(steps[0].Commands(), "\n")
	if !strings.Contains(cmds, "ip6tables -t filter -N MINIDOCKER-USER") || !strings.Contains(cmds, "one ip6tables-restore --noflush batch") || strings.Contains(cmds, "iptables -t") {
		t.Errorf("IPv6 commands:\n%s", cmds)
	}
	data, err := plan.Marshal(steps)
	if err != nil {
		t.Fatal(err)
	}
	back, err := plan.Unmarshal(data)
	if err != nil || back[0].(*RulesStep).Family != "ipv6" {
		t.Errorf("the family survives the journal: %v %v", back, err)
	}
	if u := (&CreatedTable{Family: "ipv6", Table: "filter"}).UndoCommands()[0]; u != "nft delete table ip6 filter" {
		t.Errorf("CreatedTable undo: %q", u)
	}
	// Steps journaled before families were are IPv4's.
	if FamilyNamed("") != IPv4 || (&RulesStep{Ops: steps[0].(*RulesStep).Ops}).Commands()[1] != "iptables -t filter -N MINIDOCKER-USER" {
		t.Errorf("a step without a family is IPv4's")
	}
}
