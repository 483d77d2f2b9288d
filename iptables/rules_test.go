package iptables

import (
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

// normalize maps our rules onto Docker's layout: our chains lose the MINI
// prefix, and rules we keep in our own POSTROUTING/PREROUTING chains are
// shown in the built-in chain Docker puts them in.
func normalize(rs []Rule, bridge string) map[string]bool {
	out := map[string]bool{}
	for _, r := range rs {
		chain := r.Chain
		switch chain {
		case ChainPostrouting:
			chain = "POSTROUTING"
		case ChainPrerouting:
			chain = "PREROUTING"
		}
		line := "-A " + chain + " " + r.Spec
		line = strings.ReplaceAll(line, "MINIDOCKER", "DOCKER")
		out[r.Table+" "+strings.ReplaceAll(line, "mdn-dummy", bridge)] = true
	}
	return out
}

func golden(t *testing.T, name string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseSave(data)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for table, tab := range rs.Tables {
		for _, lines := range tab.Rules {
			for _, l := range lines {
				out[table+" "+l] = true
			}
		}
	}
	return out
}

func diff(ours, docker map[string]bool) (missing, extra []string) {
	for l := range docker {
		if !ours[l] {
			missing = append(missing, l)
		}
	}
	for l := range ours {
		if !docker[l] {
			extra = append(extra, l)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return
}

// The rules we add beyond Docker 28/29's, each for a documented reason.
var ourExtras = []string{
	// a user chain first in FORWARD (Docker's DOCKER-USER, created by the daemon, not the driver)
	"filter -A FORWARD -j DOCKER-USER",
	// two-stage isolation between networks (Docker 28; 29 dropped it)
	"filter -A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1",
	"filter -A DOCKER-ISOLATION-STAGE-1 -i br-dummy ! -o br-dummy -j DOCKER-ISOLATION-STAGE-2",
	"filter -A DOCKER-ISOLATION-STAGE-2 -o br-dummy -j DROP",
	// Docker's own networks are isolated from ours
	"filter -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP",
	"filter -A DOCKER-ISOLATION-STAGE-2 -o br-+ -j DROP",
	// published ports stay reachable from other networks (Docker 29's behaviour)
	"filter -A DOCKER-ISOLATION-STAGE-1 -m conntrack --ctstate DNAT -j RETURN",
	// our masquerade and raw rules live in our own chains, reached by one jump
	"nat -A POSTROUTING -j DOCKER-POSTROUTING",
	"raw -A PREROUTING -j DOCKER-PREROUTING",
	// route_localnet is on for the bridge: no sandbox may reach the host's 127/8 (CVE-2020-8558)
	"raw -A PREROUTING -d 127.0.0.0/8 -i br-dummy -j DROP",
	// the gateway, the host's own address, stays reachable past the per-network drop (see ourInsteadOfDocker)
	"raw -A PREROUTING -d 192.168.0.1/32 -j RETURN",
}

// Docker's rules we write differently, and why.
var ourInsteadOfDocker = map[string]string{
	// One rule per sandbox in Docker: the same drop per network costs no
	// rule change when a sandbox comes or goes, and no rule per sandbox for
	// every packet entering the host to pass.
	"raw -A PREROUTING -d 192.168.0.2/32 ! -i br-dummy -j DROP": "raw -A PREROUTING -d 192.168.0.0/24 ! -i br-dummy -j DROP",
}

func TestSameRulesAsDockerGolden(t *testing.T) {
	docker := golden(t, "hairpin-true_internal-false_icc-true_masq-true_snat-false_gwm-nat_bindlh-false__iptables.golden")
	n := Network{Name: "dummy", Bridge: "mdn-dummy", Subnet: netip.MustParsePrefix("192.168.0.0/24"), Gateway: netip.MustParseAddr("192.168.0.1"), ICC: true, Masquerade: true}
	ip := netip.MustParseAddr("192.168.0.2")
	var rs []Rule
	rs = append(rs, BaseRules(false)...)
	rs = append(rs, NetworkRules(n)...)
	rs = append(rs, PortRules(Port{Sandbox: "c", Bridge: "mdn-dummy", IP: ip, Proto: "tcp", HostPort: 8080, HostPortEnd: 8080, Port: 80, PortEnd: 80})...)
	for theirs, ours := range ourInsteadOfDocker {
		if !docker[theirs] {
			t.Errorf("Docker no longer has %q", theirs)
		}
		delete(docker, theirs)
		docker[ours] = true
	}
	missing, extra := diff(normalize(rs, "br-dummy"), docker)
	if len(missing) > 0 {
		t.Errorf("Docker has rules we lack:\n%s", strings.Join(missing, "\n"))
	}
	want := slices.Clone(ourExtras)
	sort.Strings(want)
	if !slices.Equal(extra, want) {
		t.Errorf("our extra rules changed:\n%s\nwant:\n%s", strings.Join(extra, "\n"), strings.Join(want, "\n"))
	}
}

func TestSameRulesAsDockerGoldenInternal(t *testing.T) {
	docker := golden(t, "hairpin-false_internal-true_icc-true__iptables.golden")
	// Docker's proxy-on OUTPUT jump skips 127/8; we DNAT localhost in the kernel.
	delete(docker, "nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER")
	n := Network{Name: "dummy", Bridge: "mdn-dummy", Subnet: netip.MustParsePrefix("192.168.0.0/24"), Gateway: netip.MustParseAddr("192.168.0.1"), ICC: true, Internal: true}
	missing, _ := diff(normalize(append(BaseRules(false), NetworkRules(n)...), "br-dummy"), docker)
	if len(missing) > 0 {
		t.Errorf("Docker has rules we lack:\n%s", strings.Join(missing, "\n"))
	}
}

func TestPortRulesRangesAndLoopback(t *testing.T) {
	ip := netip.MustParseAddr("172.18.0.2")
	base := Port{Sandbox: "s", Bridge: "mdn-x", IP: ip, Proto: "udp"}
	same := base
	same.HostPort, same.HostPortEnd, same.Port, same.PortEnd = 8000, 8999, 8000, 8999
	shifted := base
	shifted.HostPort, shifted.HostPortEnd, shifted.Port, shifted.PortEnd = 9000, 9009, 100, 109
	local := base
	local.HostIP, local.Proto = netip.MustParseAddr("127.0.0.1"), "tcp"
	local.HostPort, local.HostPortEnd, local.Port, local.PortEnd = 8080, 8080, 80, 80
	// IPv6 (checked against ip6tables 1.8.9): /128 hosts, [addr]:port DNAT
	// targets, no DNAT of link-local sources.
	v6 := Port{Sandbox: "s", Bridge: "mdn-n", IP: netip.MustParseAddr("2001:db8:1::2"), Proto: "tcp", HostPort: 8080, HostPortEnd: 8080, Port: 80, PortEnd: 80}
	shifted6 := v6
	shifted6.HostPort, shifted6.HostPortEnd, shifted6.Port, shifted6.PortEnd = 9000, 9009, 100, 109
	for _, c := range []struct {
		p    Port
		want []string
	}{
		{same, []string{
			"nat -A MINIDOCKER -p udp -m udp --dport 8000:8999 -j DNAT --to-destination 172.18.0.2",
			"nat -A MINIDOCKER-POSTROUTING -s 172.18.0.2/32 -d 172.18.0.2/32 -p udp -m udp --dport 8000:8999 -j MASQUERADE",
			"filter -A MINIDOCKER -d 172.18.0.2/32 ! -i mdn-x -o mdn-x -p udp -m udp --dport 8000:8999 -j ACCEPT"}},
		{shifted, []string{
			"nat -A MINIDOCKER -p udp -m udp --dport 9000:9009 -j DNAT --to-destination 172.18.0.2:100-109/9000",
			"nat -A MINIDOCKER-POSTROUTING -s 172.18.0.2/32 -d 172.18.0.2/32 -p udp -m udp --dport 100:109 -j MASQUERADE",
			"filter -A MINIDOCKER -d 172.18.0.2/32 ! -i mdn-x -o mdn-x -p udp -m udp --dport 100:109 -j ACCEPT"}},
		{local, []string{
			"nat -A MINIDOCKER -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:80",
			"nat -A MINIDOCKER-POSTROUTING -s 172.18.0.2/32 -d 172.18.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
			"filter -A MINIDOCKER -d 172.18.0.2/32 ! -i mdn-x -o mdn-x -p tcp -m tcp --dport 80 -j ACCEPT",
			"raw -A MINIDOCKER-PREROUTING -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP"}},
		{v6, []string{
			"nat -A MINIDOCKER ! -s fe80::/10 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [2001:db8:1::2]:80",
			"nat -A MINIDOCKER-POSTROUTING -s 2001:db8:1::2/128 -d 2001:db8:1::2/128 -p tcp -m tcp --dport 80 -j MASQUERADE",
			"filter -A MINIDOCKER -d 2001:db8:1::2/128 ! -i mdn-n -o mdn-n -p tcp -m tcp --dport 80 -j ACCEPT"}},
		{shifted6, []string{
			"nat -A MINIDOCKER ! -s fe80::/10 -p tcp -m tcp --dport 9000:9009 -j DNAT --to-destination [2001:db8:1::2]:100-109/9000",
			"nat -A MINIDOCKER-POSTROUTING -s 2001:db8:1::2/128 -d 2001:db8:1::2/128 -p tcp -m tcp --dport 100:109 -j MASQUERADE",
			"filter -A MINIDOCKER -d 2001:db8:1::2/128 ! -i mdn-n -o mdn-n -p tcp -m tcp --dport 100:109 -j ACCEPT"}},
	} {
		var got []string
		for _, r := range PortRules(c.p) {
			got = append(got, r.Key())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\ngot  %s\nwant %s", c.p, strings.Join(got, "\n     "), strings.Join(c.want, "\n     "))
		}
	}
}

func TestParseSave(t *testing.T) {
	rs, err := ParseSave([]byte(`# Generated by iptables-save v1.8.9 (nf_tables) on Thu
*filter
:INPUT ACCEPT [12:345]
:FORWARD DROP [0:0]
:MINIDOCKER - [0:0]
-A FORWARD -j MINIDOCKER
COMMIT
`))
	if err != nil {
		t.Fatal(err)
	}
	if !rs.NFTables || !rs.HasChain("filter", "MINIDOCKER") || rs.Policy("filter", "FORWARD") != "DROP" ||
		!rs.HasRule(Rule{Table: "filter", Chain: "FORWARD", Spec: "-j MINIDOCKER"}) || rs.HasTable("nat") {
		t.Errorf("parsed %+v", rs.Tables["filter"])
	}
	if rs.Tables["filter"].Empty() {
		t.Error("a table with a DROP policy and rules is not empty")
	}
	if _, err := ParseSave([]byte("-A FORWARD -j X\n")); err == nil {
		t.Error("a rule outside a table must be an error")
	}
}

func TestChangeStepsOrderAndCheck(t *testing.T) {
	n := Network{Name: "x", Bridge: "mdn-x", Subnet: netip.MustParsePrefix("172.18.0.0/16"), ICC: true, Masquerade: true}
	c := Diff(nil, append(BaseRules(false), NetworkRules(n)...))
	c.NewChains = BaseChains
	// The kernel already has the FORWARD jump to MINIDOCKER-USER: not added twice.
	rs := &Ruleset{Tables: map[string]*Table{}}
	rs.apply("filter", Op{Kind: OpNewChain, Chain: ChainUser})
	rs.apply("filter", Op{Kind: OpAdd, Chain: "FORWARD", Spec: "-j " + ChainUser})
	steps := c.Steps(rs)
	if len(steps) != 1 {
		t.Fatalf("want one step for all tables, got %d", len(steps))
	}
	all := steps[0].(*RulesStep).Ops
	if all[0].Table != "raw" || all[len(all)-1].Table != "filter" {
		t.Fatalf("tables in order raw, nat, filter: %+v ... %+v", all[0], all[len(all)-1])
	}
	var kinds []string
	var f []TableOp
	for _, o := range all {
		if o.Table == "filter" {
			f = append(f, o)
		}
	}
	for _, o := range f {
		kinds = append(kinds, string(o.Kind)+" "+o.Chain+" "+o.Spec)
		if o.Chain == ChainUser && o.Kind == OpNewChain || o.Spec == "-j "+ChainUser {
			t.Errorf("op already satisfied by the kernel was planned: %+v", o)
		}
	}
	if !strings.HasPrefix(kinds[0], "new-chain") || !strings.HasPrefix(kinds[len(kinds)-1], "add FORWARD -j MINIDOCKER-FORWARD") {
		t.Errorf("chains first, inserts last:\n%s", strings.Join(kinds, "\n"))
	}
	inv := inverseAll(f)
	if inv[0].Kind != OpDel || inv[len(inv)-1].Kind != OpDelChain {
		t.Errorf("undo deletes rules before chains: %+v ... %+v", inv[0], inv[len(inv)-1])
	}
}

func FuzzParseSave(f *testing.F) {
	f.Add("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j X\nCOMMIT\n")
	f.Add("# Generated by iptables-save v1.8.9 (nf_tables)\n*nat\n:A - [0:0]\n-A A -p tcp -m tcp --dport 1:2 -j DNAT --to-destination 1.2.3.4\nCOMMIT\n")
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := ParseSave([]byte(in))
		if err != nil {
			return
		}
		// Whatever parses can be walked without a panic.
		for table := range rs.Tables {
			for _, c := range []string{"FORWARD", "PREROUTING", "POSTROUTING", "OUTPUT"} {
				_ = rs.Walk(table, c, Packet{Proto: "tcp", DPort: 80})
			}
		}
	})
}

func TestRulesetTextRoundTrip(t *testing.T) {
	rs := lessonRuleset()
	var b strings.Builder
	rs.write(&b)
	back, err := ParseSave([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	var again strings.Builder
	back.write(&again)
	if again.String() != b.String() {
		t.Errorf("round trip differs:\n%s\n---\n%s", b.String(), again.String())
	}
	if back.Policy("filter", "FORWARD") != "DROP" || !back.HasChain("raw", ChainPrerouting) {
		t.Errorf("policies or chains lost")
	}
}

// TestIPv6Rules: a network's ip6tables rules have IPv4's layout, in the
// text ip6tables-save prints, without route_localnet's 127/8 drop (its
// published ports are in TestPortRulesRangesAndLoopback).
func TestIPv6Rules(t *testing.T) {
	n := Network{Name: "n", Bridge: "mdn-n", Subnet: netip.MustParsePrefix("2001:db8:1::/64"), Gateway: netip.MustParseAddr("2001:db8:1::1"), ICC: true, Masquerade: true}
	var got []string
	for _, r := range NetworkRules(n) {
		got = append(got, r.Key())
	}
	want := []string{
		"raw -A MINIDOCKER-PREROUTING -d 2001:db8:1::1/128 -j RETURN",
		"raw -A MINIDOCKER-PREROUTING -d 2001:db8:1::/64 ! -i mdn-n -j DROP",
		"nat -A MINIDOCKER-POSTROUTING -o mdn-n -m addrtype --src-type LOCAL -j MASQUERADE",
		"nat -A MINIDOCKER-POSTROUTING -s 2001:db8:1::/64 ! -o mdn-n -j MASQUERADE",
	}
	if !slices.Equal(got[:len(want)], want) {
		t.Errorf("network rules:\ngot  %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	for _, r := range got {
		if strings.Contains(r, "127.0.0.0/8") || strings.Contains(r, "/32") {
			t.Errorf("an IPv4 rule among IPv6's: %s", r)
		}
	}
	n.Internal = true
	got = nil
	for _, r := range NetworkRules(n) {
		got = append(got, r.Key())
	}
	// Only what crosses the bridge's edge: bridged neighbour discovery has
	// link-local sources.
	if want := []string{"filter -A MINIDOCKER-INTERNAL ! -s 2001:db8:1::/64 ! -i mdn-n -o mdn-n -j DROP",
		"filter -A MINIDOCKER-INTERNAL ! -d 2001:db8:1::/64 -i mdn-n ! -o mdn-n -j DROP"}; !slices.Equal(got[:2], want) {
		t.Errorf("internal IPv6 rules:\ngot  %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}
