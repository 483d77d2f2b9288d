package iptables

import (
	"net/netip"
	"testing"
)

func lessonRuleset() *Ruleset {
	var rules []Rule
	rules = append(rules, BaseRules(false)...)
	rules = append(rules, NetworkRules(Network{Name: "test-network", Bridge: "mdn-test", Subnet: netip.MustParsePrefix("172.18.0.0/16"), Gateway: netip.MustParseAddr("172.18.0.1"), ICC: true, Masquerade: true})...)
	rules = append(rules, NetworkRules(Network{Name: "applesonly", Bridge: "mdn-apples", Subnet: netip.MustParsePrefix("172.19.0.0/16"), Gateway: netip.MustParseAddr("172.19.0.1"), ICC: true, Masquerade: true})...)
	rules = append(rules, PortRules(Port{Sandbox: "orange-server", Bridge: "mdn-test", IP: netip.MustParseAddr("172.18.0.3"), Proto: "tcp",
		HostPort: 8000, HostPortEnd: 8009, Port: 9000, PortEnd: 9009})...)
	c := Diff(nil, rules)
	c.NewChains = BaseChains
	c.Policies = map[string]Op{"filter": {Kind: OpPolicy, Chain: "FORWARD", Policy: "DROP", OldPolicy: "ACCEPT"}}
	// Apply the batch to a model ruleset exactly as iptables-restore would.
	rs := &Ruleset{Tables: map[string]*Table{}}
	for _, o := range c.Steps(rs)[0].(*RulesStep).Ops {
		rs.apply(o.Table, o.Op)
	}
	return rs
}

func TestWalk(t *testing.T) {
	rs := lessonRuleset()
	red, orange, apple := netip.MustParseAddr("172.19.0.3"), netip.MustParseAddr("172.18.0.3"), netip.MustParseAddr("172.19.0.2")
	cross := rs.Walk("filter", "FORWARD", Packet{In: "mdn-apples", Out: "mdn-test", Src: red, Dst: orange, Proto: "icmp"})
	if cross.Target != "DROP" || cross.Path[len(cross.Path)-1].Line != "-A MINIDOCKER-ISOLATION-STAGE-2 -o mdn-test -j DROP" {
		t.Errorf("red-apple -> orange-server: %+v", cross)
	}
	same := rs.Walk("filter", "FORWARD", Packet{In: "mdn-apples", Out: "mdn-apples", Src: red, Dst: apple, Proto: "icmp"})
	if same.Target != "ACCEPT" || same.Path[len(same.Path)-1].Line != "-A MINIDOCKER-FORWARD -i mdn-apples -j ACCEPT" {
		t.Errorf("red-apple -> apple-server: %+v", same)
	}
	// To a published port through the host: DNAT first, then the accept.
	dn := rs.Walk("nat", "PREROUTING", Packet{In: "mdn-apples", Src: red, Dst: netip.MustParseAddr("172.19.0.1"), Proto: "tcp", DPort: 8004, LocalDst: true})
	ip, port, err := DNATTarget(dn.To, 8004)
	if dn.Target != "DNAT" || err != nil || ip != orange || port != 9004 {
		t.Fatalf("DNAT: %+v %v %d %v", dn, ip, port, err)
	}
	fwd := rs.Walk("filter", "FORWARD", Packet{In: "mdn-apples", Out: "mdn-test", Src: red, Dst: ip, Proto: "tcp", DPort: port, DNATed: true})
	if fwd.Target != "ACCEPT" {
		t.Errorf("published port from another network: %+v", fwd)
	}
	// Unpublished port from outside: the per-bridge drop.
	out := rs.Walk("filter", "FORWARD", Packet{In: "eth0", Out: "mdn-test", Src: netip.MustParseAddr("203.0.113.2"), Dst: orange, Proto: "tcp", DPort: 22})
	if out.Target != "DROP" || out.Path[len(out.Path)-1].Line != "-A MINIDOCKER ! -i mdn-test -o mdn-test -j DROP" {
		t.Errorf("unpublished from outside: %+v", out)
	}
	raw := rs.Walk("raw", "PREROUTING", Packet{In: "eth0", Src: netip.MustParseAddr("203.0.113.2"), Dst: orange, Proto: "tcp", DPort: 9000})
	if raw.Target != "DROP" {
		t.Errorf("direct routing to a sandbox: %+v", raw)
	}
	gw := rs.Walk("raw", "PREROUTING", Packet{In: "eth0", Src: netip.MustParseAddr("203.0.113.2"), Dst: netip.MustParseAddr("172.18.0.1"), Proto: "tcp", DPort: 22})
	if gw.Target == "DROP" {
		t.Errorf("the gateway is the host's address and stays reachable: %+v", gw)
	}
	// A rule with a match we do not model is skipped and reported.
	rs.apply("filter", Op{Kind: OpAdd, Chain: ChainUser, Spec: "-m physdev --physdev-in veth0 -j DROP"})
	if v := rs.Walk("filter", "FORWARD", Packet{In: "mdn-test", Out: "mdn-test", Proto: "icmp"}); len(v.Unknown) != 1 || v.Target != "ACCEPT" {
		t.Errorf("unknown match: %+v", v)
	}
}

func TestDNATTarget(t *testing.T) {
	for to, want := range map[string]string{"10.0.0.2:80": "10.0.0.2:80", "10.0.0.2": "10.0.0.2:5555", "10.0.0.2:100-109/5550": "10.0.0.2:105",
		"[2001:db8::2]:80": "[2001:db8::2]:80", "2001:db8::2": "[2001:db8::2]:5555", "[2001:db8::2]:100-109/5550": "[2001:db8::2]:105"} {
		ip, port, err := DNATTarget(to, 5555)
		if err != nil || netip.AddrPortFrom(ip, uint16(port)).String() != want {
			t.Errorf("DNATTarget(%q) = %s:%d %v, want %s", to, ip, port, err, want)
		}
	}
}
