package engine

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"

	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/iptables"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

func natNetwork(n *store.Network) iptables.Network {
	return iptables.Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal, ICC: n.ICC, Masquerade: n.Masquerade}
}

// PortRuleSpecs returns the mappings of a sandbox as the nat package sees
// them, bound to its gateway endpoint (nil when it has none).
func PortRuleSpecs(s *store.State, sb *store.Sandbox) []iptables.Port {
	gw := model.GatewayEndpoint(s, sb)
	if gw == nil {
		return nil
	}
	br := s.Networks[gw.Network].Bridge
	var out []iptables.Port
	for _, p := range sb.Ports {
		out = append(out, iptables.Port{
			Sandbox: sb.Name, Bridge: br, IP: gw.IP, HostIP: p.HostIP, Proto: p.Proto,
			HostPort: p.HostPort, HostPortEnd: p.HostPortEnd, Port: p.Port, PortEnd: p.PortEnd,
		})
	}
	return out
}

// DesiredRules is every rule the state calls for, in order: the skeleton,
// then per network and per published port. It is a pure
// function of the state, so a command's rule change is a diff of two calls.
func DesiredRules(s *store.State) []iptables.Rule {
	if len(s.Networks) == 0 {
		return nil
	}
	rules := iptables.BaseRules()
	for _, name := range s.NetworkNames() {
		rules = append(rules, iptables.NetworkRules(natNetwork(s.Networks[name]))...)
	}
	for _, name := range s.SandboxNames() {
		for _, p := range PortRuleSpecs(s, s.Sandboxes[name]) {
			rules = append(rules, iptables.PortRules(p)...)
		}
	}
	return rules
}

// changedRules returns the rules of what differs between two states: the
// skeleton when networks come or go, the networks whose record changed,
// and the sandboxes whose mappings changed. Unchanged
// objects would give both sides the same rules, so the diff is that of
// DesiredRules, without building every rule of the host twice.
func changedRules(old, cur *store.State) (from, to []iptables.Rule) {
	if had, has := len(old.Networks) > 0, len(cur.Networks) > 0; had && !has {
		from = iptables.BaseRules()
	} else if has && !had {
		to = iptables.BaseRules()
	}
	for _, n := range unionKeys(old.Networks, cur.Networks) {
		o, c := old.Networks[n], cur.Networks[n]
		if o != nil && c != nil && reflect.DeepEqual(o, c) {
			continue
		}
		if o != nil {
			from = append(from, iptables.NetworkRules(natNetwork(o))...)
		}
		if c != nil {
			to = append(to, iptables.NetworkRules(natNetwork(c))...)
		}
	}
	for _, n := range unionKeys(old.Sandboxes, cur.Sandboxes) {
		var before, after []iptables.Port
		if sb := old.Sandboxes[n]; sb != nil {
			before = PortRuleSpecs(old, sb)
		}
		if sb := cur.Sandboxes[n]; sb != nil {
			after = PortRuleSpecs(cur, sb)
		}
		if slices.Equal(before, after) {
			continue
		}
		changed := changedGroups(before, after)
		for _, p := range before {
			if changed[shareGroup(p)] {
				from = append(from, iptables.PortRules(p)...)
			}
		}
		for _, p := range after {
			if changed[shareGroup(p)] {
				to = append(to, iptables.PortRules(p)...)
			}
		}
	}
	return from, to
}

// portGroup is what mappings sharing rules have in common: two host ports
// onto one container port share its ACCEPT and its MASQUERADE.
type portGroup struct {
	IP            netip.Addr
	Bridge, Proto string
	Port, PortEnd int
}

func shareGroup(p iptables.Port) portGroup {
	return portGroup{IP: p.IP, Bridge: p.Bridge, Proto: p.Proto, Port: p.Port, PortEnd: p.PortEnd}
}

// changedGroups returns the groups whose mappings differ: only those are
// diffed, whole, so publishing one more port does not rebuild the rules
// of every other. A command changes few mappings of many, so what both
// lists share at either end is trimmed first; a group with no mapping in
// what remains has the same members on both sides.
func changedGroups(before, after []iptables.Port) map[portGroup]bool {
	for len(before) > 0 && len(after) > 0 && before[0] == after[0] {
		before, after = before[1:], after[1:]
	}
	for len(before) > 0 && len(after) > 0 && before[len(before)-1] == after[len(after)-1] {
		before, after = before[:len(before)-1], after[:len(after)-1]
	}
	changed := map[portGroup]bool{}
	for _, p := range append(slices.Clip(before), after...) {
		changed[shareGroup(p)] = true
	}
	return changed
}

// unionKeys returns the keys of both maps, sorted, each once.
func unionKeys[V any](a, b map[string]V) []string {
	out := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// ruleSteps computes the batched iptables steps between the old and the
// new state, checked against the kernel's ruleset.
func (t *tx) ruleSteps() ([]plan.Step, error) {
	c := iptables.Diff(changedRules(t.old, t.new))
	had, has := len(t.old.Networks) > 0, len(t.new.Networks) > 0
	if !had && has {
		c.NewChains = iptables.BaseChains
	}
	var rs *iptables.Ruleset
	if had && !has {
		var err error
		if rs, err = t.ruleset(); err != nil {
			return nil, err
		}
		c.DelChains = map[string][]string{}
		for table, chains := range iptables.BaseChains {
			c.DelChains[table] = slices.Clone(chains)
		}
		// The admin's rules in MINIDOCKER-USER are theirs: keep the chain
		// and its jump when it is not empty.
		if len(rs.RulesIn("filter", iptables.ChainUser)) > 0 {
			c.DelChains["filter"] = slices.DeleteFunc(c.DelChains["filter"], func(ch string) bool { return ch == iptables.ChainUser })
			c.Del = slices.DeleteFunc(c.Del, func(r iptables.Rule) bool { return r.Chain == "FORWARD" && r.Spec == "-j "+iptables.ChainUser })
		}
	}
	if t.new.Host.ForwardingEnabled != t.old.Host.ForwardingEnabled {
		op := iptables.Op{Kind: iptables.OpPolicy, Chain: "FORWARD", Policy: "DROP", OldPolicy: t.new.Host.ForwardPolicyWas,
			Why: "ip_forward was off: only what minidocker-net accepts is forwarded (as Docker does)"}
		if !t.new.Host.ForwardingEnabled {
			op.Policy, op.OldPolicy = t.old.Host.ForwardPolicyWas, "DROP"
		}
		c.Policies = map[string]iptables.Op{"filter": op}
	}
	if len(c.Add) == 0 && len(c.Del) == 0 && len(c.NewChains) == 0 && len(c.DelChains) == 0 && len(c.Policies) == 0 {
		return nil, nil
	}
	if rs == nil {
		var err error
		if rs, err = t.ruleset(); err != nil {
			return nil, err
		}
	}
	return c.Steps(rs), nil
}

// hostSetup records and plans what the first network changes on the host:
// IP forwarding (with the FORWARD policy DROP when we had to turn it on)
// and which iptables tables did not exist yet.
func (t *tx) hostSetup() error {
	if len(t.old.Networks) > 0 {
		return nil
	}
	rs, err := t.ruleset()
	if err != nil {
		return err
	}
	t.new.Host.TablesCreated = nil
	for _, table := range iptables.Tables {
		if !rs.HasTable(table) {
			t.new.Host.TablesCreated = append(t.new.Host.TablesCreated, table)
			t.setup = append(t.setup, &iptables.CreatedTable{Table: table})
		}
	}
	step, err := sysctl.NewStep("net.ipv4.ip_forward", "1")
	if err != nil {
		return err
	}
	if step != nil {
		t.new.Host.ForwardingEnabled = true
		t.new.Host.ForwardPolicyWas = rs.Policy("filter", "FORWARD")
		t.setup = append(t.setup, step)
	}
	return nil
}

// hostTeardown puts the host back as the first network found it, once the
// last network is gone.
func (t *tx) hostTeardown() {
	if len(t.new.Networks) > 0 {
		return
	}
	if t.old.Host.ForwardingEnabled {
		t.teardown = append(t.teardown, plan.Reverse{Inner: &sysctl.Step{Key: "net.ipv4.ip_forward", Value: "1", Old: "0"}})
	}
	for _, table := range t.old.Host.TablesCreated {
		t.teardown = append(t.teardown, plan.Reverse{Inner: &iptables.CreatedTable{Table: table}})
	}
	t.new.Host = store.Host{Schema: store.Schema}
}
