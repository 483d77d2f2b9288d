package iptables

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/plan"
)

// Backend is the iptables firewall backend: Docker 28's layout, with
// every command's change applied by one iptables-restore.
type Backend struct {
	family Family
	cache  string // where the ruleset is kept between commands
	rs     *Ruleset
}

var _ firewall.Backend = (*Backend)(nil)

// New returns the backend for one command; cache is where the ruleset is
// kept between commands ("" for none).
func New(cache string) *Backend { return NewFamily(IPv4, cache) }

// NewFamily returns the backend of one address family (ip6tables for
// IPv6).
func NewFamily(f Family, cache string) *Backend { return &Backend{family: f, cache: cache} }

func (b *Backend) Name() string { return b.family.Tool }

// ruleset returns the kernel's ruleset, read once per command: from the
// cache when the nftables generation proves it current.
func (b *Backend) ruleset() (*Ruleset, error) {
	if b.rs == nil {
		if rs, ok := LoadCache(b.cache, b.family); ok && b.cache != "" {
			b.rs = rs
			return rs, nil
		}
		rs, err := Save(b.family)
		if err != nil {
			return nil, err
		}
		b.rs = rs
	}
	return b.rs, nil
}

// Rules is every rule an intent calls for, in order: the skeleton, then
// per network and per published port. It is a pure function of the
// intent, so a change is a diff of two calls.
func Rules(in firewall.Intent) []Rule {
	if len(in.Networks) == 0 {
		return nil
	}
	rules := BaseRules(isIPv6(in))
	for _, n := range in.Networks {
		rules = append(rules, NetworkRules(n)...)
	}
	for _, p := range in.Ports {
		rules = append(rules, PortRules(p)...)
	}
	return rules
}

// isIPv6 says whether an intent is IPv6's (its networks' subnets are).
func isIPv6(in firewall.Intent) bool {
	return len(in.Networks) > 0 && in.Networks[0].Subnet.Addr().Is6()
}

// Setup notes the tables that do not exist yet (the first rule creates
// them; removing the last network deletes them again when empty).
func (b *Backend) Setup() ([]plan.Step, []string, string, error) {
	rs, err := b.ruleset()
	if err != nil {
		return nil, nil, "", err
	}
	var steps []plan.Step
	var created []string
	for _, table := range Tables {
		if !rs.HasTable(table) {
			created = append(created, table)
			steps = append(steps, &CreatedTable{Family: familyField(b.family), Table: table})
		}
	}
	return steps, created, rs.Policy("filter", "FORWARD"), nil
}

func (b *Backend) Teardown(created []string) []plan.Step {
	var steps []plan.Step
	for _, table := range created {
		steps = append(steps, plan.Reverse{Inner: &CreatedTable{Family: familyField(b.family), Table: table}})
	}
	return steps
}

func (b *Backend) ForwardPolicy() (string, error) {
	rs, err := b.ruleset()
	if err != nil {
		return "", err
	}
	return rs.Policy("filter", "FORWARD"), nil
}

// changedRules returns the rules of what differs between two intents: the
// skeleton when networks come or go, the networks that changed, and the
// port groups that changed. Unchanged objects would give both sides the
// same rules, so the diff is that of Rules, without building every rule
// of the host twice.
func changedRules(old, cur firewall.Intent) (from, to []Rule) {
	if had, has := len(old.Networks) > 0, len(cur.Networks) > 0; had && !has {
		from = BaseRules(isIPv6(old))
	} else if has && !had {
		to = BaseRules(isIPv6(cur))
	}
	oldNets, curNets := byName(old.Networks), byName(cur.Networks)
	for _, n := range firewall.UnionKeys(oldNets, curNets) {
		o, c := oldNets[n], curNets[n]
		if o != nil && c != nil && reflect.DeepEqual(o, c) {
			continue
		}
		if o != nil {
			from = append(from, NetworkRules(*o)...)
		}
		if c != nil {
			to = append(to, NetworkRules(*c)...)
		}
	}
	before, after := firewall.ChangedPorts(old, cur)
	for _, p := range before {
		from = append(from, PortRules(p)...)
	}
	for _, p := range after {
		to = append(to, PortRules(p)...)
	}
	return from, to
}

func byName(ns []firewall.Network) map[string]*firewall.Network {
	m := make(map[string]*firewall.Network, len(ns))
	for i := range ns {
		m[ns[i].Name] = &ns[i]
	}
	return m
}

// Change computes the batched iptables step between two intents, checked
// against the kernel's ruleset.
func (b *Backend) Change(from, to firewall.Intent) ([]plan.Step, error) {
	c := Diff(changedRules(from, to))
	had, has := len(from.Networks) > 0, len(to.Networks) > 0
	if !had && has {
		c.NewChains = BaseChains
	}
	if had && !has {
		rs, err := b.ruleset()
		if err != nil {
			return nil, err
		}
		c.DelChains = map[string][]string{}
		for table, chains := range BaseChains {
			c.DelChains[table] = slices.Clone(chains)
		}
		// The admin's rules in MINIDOCKER-USER are theirs: keep the chain
		// and its jump when it is not empty.
		if len(rs.RulesIn("filter", ChainUser)) > 0 {
			c.DelChains["filter"] = slices.DeleteFunc(c.DelChains["filter"], func(ch string) bool { return ch == ChainUser })
			c.Del = slices.DeleteFunc(c.Del, func(r Rule) bool { return r.Chain == "FORWARD" && r.Spec == "-j "+ChainUser })
		}
	}
	if to.ForwardDrop != from.ForwardDrop {
		op := Op{Kind: OpPolicy, Chain: "FORWARD", Policy: "DROP", OldPolicy: to.PolicyWas,
			Why: "ip_forward was off: only what minidocker-net accepts is forwarded (as Docker does)"}
		if !to.ForwardDrop {
			op.Policy, op.OldPolicy = from.PolicyWas, "DROP"
		}
		c.Policies = map[string]Op{"filter": op}
	}
	if len(c.Add) == 0 && len(c.Del) == 0 && len(c.NewChains) == 0 && len(c.DelChains) == 0 && len(c.Policies) == 0 {
		return nil, nil
	}
	rs, err := b.ruleset()
	if err != nil {
		return nil, err
	}
	return c.Steps(rs), nil
}

func (b *Backend) Rebuild(want firewall.Intent) (plan.Step, error) {
	rs, err := b.ruleset()
	if err != nil {
		return nil, err
	}
	policy := ""
	if want.ForwardDrop {
		policy = "DROP"
	}
	if r := PlanRebuild(rs, Rules(want), policy); r != nil {
		return r, nil
	}
	return nil, nil
}

func (b *Backend) Remove(policy string, created []string, known bool) ([]plan.Step, error) {
	rs, err := Save(b.family) // never the cache: reset trusts nothing it kept
	if err != nil {
		return nil, err
	}
	b.rs = rs
	var steps []plan.Step
	if rm := FindOwned(rs, policy); len(rm.Cmds) > 0 {
		steps = append(steps, rm)
	}
	// Without records nobody can say which tables we created: one that
	// holds chains of ours and is empty without them goes too; a table the
	// host had already (an empty filter table made by 'iptables -P FORWARD
	// ACCEPT', say) holds none of ours and stays.
	if !known {
		created = nil
		for _, table := range Tables {
			if t := rs.Tables[table]; t != nil && t.HoldsOurs() {
				created = append(created, table)
			}
		}
	}
	return append(steps, b.Teardown(created)...), nil
}

func (b *Backend) Check(want firewall.Intent) ([]firewall.Finding, error) {
	rs, err := b.ruleset()
	if err != nil {
		return nil, err
	}
	rules := Rules(want)
	var out []firewall.Finding
	known := map[string]bool{}
	for _, r := range rules {
		known[r.Key()] = true
		if !rs.HasRule(r) {
			out = append(out, firewall.Finding{What: b.family.Tool + " -t " + r.Table + " " + r.Line(), Why: r.Why, Missing: true})
		}
	}
	for _, table := range Tables {
		t := rs.Tables[table]
		if t == nil {
			continue
		}
		for _, ch := range t.Chains {
			if !strings.HasPrefix(ch, Prefix) || ch == ChainUser {
				continue
			}
			for _, l := range t.Rules[ch] {
				if !known[table+" "+l] {
					out = append(out, firewall.Finding{What: b.family.Tool + " -t " + table + " " + l, Why: "not in the records"})
				}
			}
		}
	}
	return out, nil
}

func (b *Backend) Tables() []string { return Tables }

// owned reports whether a rule line belongs to minidocker-net: it sits in
// one of our chains or jumps into one.
func owned(chain, line string) bool {
	return strings.HasPrefix(chain, Prefix) || strings.Contains(line, "-j "+Prefix)
}

// List writes the rules minidocker-net owns, as iptables-save prints them,
// each followed by what it is for. Rules the intent calls for but the
// kernel lacks, and rules in our chains nobody asked for, are flagged.
func (b *Backend) List(w io.Writer, want firewall.Intent, tables []string) error {
	rs, err := Save(b.family)
	if err != nil {
		return err
	}
	why := map[string]string{}
	rules := Rules(want)
	for _, r := range rules {
		why[r.Key()] = r.Why
	}
	width := 0
	for _, table := range tables {
		if t := rs.Tables[table]; t != nil {
			for _, lines := range t.Rules {
				for _, l := range lines {
					width = max(width, len(l))
				}
			}
		}
	}
	width = min(width, 110)
	for _, table := range tables {
		t := rs.Tables[table]
		fmt.Fprintf(w, "*%s\n", table)
		if t == nil {
			fmt.Fprintln(w, "# (no such table: minidocker-net has no rules here)")
		} else {
			if p := t.Policies["FORWARD"]; table == "filter" && p != "" {
				fmt.Fprintf(w, ":FORWARD %s  %s# the FORWARD policy\n", p, strings.Repeat(" ", max(0, width-len(":FORWARD "+p))))
			}
			for _, c := range t.Chains {
				if strings.HasPrefix(c, Prefix) {
					fmt.Fprintf(w, ":%s - [0:0]\n", c)
				}
			}
			for _, c := range t.Chains {
				for _, l := range t.Rules[c] {
					if !owned(c, l) {
						continue
					}
					note, ok := why[table+" "+l]
					if !ok {
						note = "not in minidocker-net's records: added by hand, or left over ('minidocker-net doctor')"
					}
					fmt.Fprintf(w, "%-*s  # %s\n", width, l, note)
				}
			}
		}
		for _, r := range rules {
			if r.Table == table && !rs.HasRule(r) {
				fmt.Fprintf(w, "# MISSING %s  # %s ('minidocker-net restore' puts it back)\n", r.Line(), r.Why)
			}
		}
		fmt.Fprintln(w, "COMMIT")
	}
	return nil
}

var hooks = map[firewall.Hook][2]string{
	firewall.RawPrerouting:  {"raw", "PREROUTING"},
	firewall.NatPrerouting:  {"nat", "PREROUTING"},
	firewall.NatOutput:      {"nat", "OUTPUT"},
	firewall.FilterForward:  {"filter", "FORWARD"},
	firewall.NatPostrouting: {"nat", "POSTROUTING"},
}

// Walk evaluates a packet through the built-in chain of a hook, following
// jumps.
func (b *Backend) Walk(want firewall.Intent, hook firewall.Hook, p firewall.Packet) (firewall.Verdict, error) {
	rs, err := b.ruleset()
	if err != nil {
		return firewall.Verdict{}, err
	}
	h := hooks[hook]
	v := rs.Walk(h[0], h[1], p)
	why := map[string]string{}
	if len(v.Path) > 0 {
		for _, r := range Rules(want) {
			why[r.Key()] = r.Why
		}
	}
	out := firewall.Verdict{Where: h[0] + " " + h[1], Target: v.Target, Policy: v.Policy, To: v.To, Unknown: v.Unknown}
	for _, m := range v.Path {
		out.Path = append(out.Path, firewall.Match{Where: m.Table + " " + m.Chain, Line: m.Line, Target: m.Target, Why: why[m.Table+" "+m.Line]})
	}
	return out, nil
}

func (b *Backend) DNATTarget(to string, dport int) (netip.Addr, int, error) {
	return DNATTarget(to, dport)
}

// Prestart gives the plan the ruleset read while planning (the command
// holds the lock, and nothing else writes our chains in between) and
// starts its iptables-restore early.
func (b *Backend) Prestart(ctx *plan.Context, steps []plan.Step) {
	if b.rs != nil {
		Seed(ctx, b.rs)
	}
	Prestart(ctx, steps)
}

// Keep keeps the ruleset for the next command; none once nothing is ours.
func (b *Backend) Keep(ctx *plan.Context, ours bool) {
	if b.cache == "" {
		return
	}
	switch rs := Peek(ctx, b.family); {
	case !ours:
		_ = os.Remove(b.cache)
	case rs != nil:
		_ = rs.StoreCache(b.cache)
	}
}

// Resolver is the embedded DNS's nat rules inside a sandbox.
func (b *Backend) Resolver(netns string, ip netip.Addr, port int) plan.Step {
	return &NamespaceDNS{Netns: netns, IP: ip.String(), Port: port}
}
