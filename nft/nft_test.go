package nft

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/plan"
)

func network(name, bridge, subnet, gw string) firewall.Network {
	return firewall.Network{Name: name, Bridge: bridge, Subnet: netip.MustParsePrefix(subnet), Gateway: netip.MustParseAddr(gw), ICC: true, Masquerade: true}
}

func port(sb, ip string, host, ctr int) firewall.Port {
	return firewall.Port{Sandbox: sb, Bridge: "mdn-x", IP: netip.MustParseAddr(ip), Proto: "tcp", HostPort: host, HostPortEnd: host, Port: ctr, PortEnd: ctr}
}

func lesson() firewall.Intent {
	return firewall.Intent{Networks: []firewall.Network{network("test-network", "mdn-x", "172.18.0.0/16", "172.18.0.1")},
		Ports: []firewall.Port{port("web", "172.18.0.2", 8080, 80)}}
}

func printed(t *testing.T, steps []plan.Step) string {
	t.Helper()
	var out []string
	for _, s := range steps {
		out = append(out, s.Commands()...)
	}
	return strings.Join(out, "\n")
}

// The layout is Docker 29's: its chains, maps and Docker's comments.
func TestLayoutIsDocker29s(t *testing.T) {
	in := lesson()
	in.Networks = append(in.Networks, firewall.Network{Name: "closed", Bridge: "mdn-c", Subnet: netip.MustParsePrefix("10.9.0.0/24"), Gateway: netip.MustParseAddr("10.9.0.1"), Internal: true})
	steps, err := New(firewall.IPv4).Change(firewall.Intent{}, in)
	if err != nil {
		t.Fatal(err)
	}
	got := printed(t, steps)
	for _, want := range []string{
		"nft -f - <<'EOF'",
		"add table ip minidocker-bridges",
		"add map ip minidocker-bridges filter-forward-in-jumps { type ifname : verdict; }",
		"add chain ip minidocker-bridges filter-FORWARD { type filter hook forward priority filter; policy accept; }",
		"add chain ip minidocker-bridges nat-OUTPUT { type nat hook output priority -100; policy accept; }",
		"add rule ip minidocker-bridges filter-FORWARD oifname vmap @filter-forward-in-jumps",
		`add rule ip minidocker-bridges filter-forward-in__mdn-x iifname "mdn-x" accept comment "ICC"`,
		`add rule ip minidocker-bridges filter-forward-in__mdn-x drop comment "UNPUBLISHED PORT DROP"`,
		`add rule ip minidocker-bridges nat-postrouting-out__mdn-x oifname != "mdn-x" ip saddr 172.18.0.0/16 masquerade comment "MASQUERADE"`,
		`add rule ip minidocker-bridges raw-PREROUTING iifname "mdn-x" ip daddr 127.0.0.0/8 drop`,
		`add rule ip minidocker-bridges raw-PREROUTING iifname != "mdn-x" ip daddr 172.18.0.0/16 ip daddr != 172.18.0.1 drop comment "DROP DIRECT ACCESS"`,
		`add rule ip minidocker-bridges filter-forward-in__mdn-c iifname != "mdn-c" drop comment "INTERNAL NETWORK INGRESS"`,
		`add rule ip minidocker-bridges filter-forward-out__mdn-c oifname != "mdn-c" drop comment "INTERNAL NETWORK EGRESS"`,
		`add element ip minidocker-bridges filter-forward-in-jumps { "mdn-x" : jump filter-forward-in__mdn-x, "mdn-c" : jump filter-forward-in__mdn-c }`,
		"add element ip minidocker-bridges dnat-ports-any { tcp . 8080 : 172.18.0.2 . 80 }",
		"add element ip minidocker-bridges published-ports { 172.18.0.2 . tcp . 80 }",
		"add element ip minidocker-bridges hairpin-ports { 172.18.0.2 . 172.18.0.2 . tcp . 80 }",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	// An internal network has no NAT and no raw drops.
	if strings.Contains(got, "nat-postrouting-out__mdn-c") || strings.Contains(got, "10.9.0.0/24 ip daddr") {
		t.Errorf("an internal network got NAT or raw rules:\n%s", got)
	}
}

// Publishing one more port, beside any number, is element changes only.
func TestOnePortIsElementsOnly(t *testing.T) {
	for _, n := range []int{0, 10000} {
		from := lesson()
		for i := 0; i < n; i++ {
			from.Ports = append(from.Ports, port("many", "172.18.0.3", 20000+i, 20000+i))
		}
		to := from
		to.Ports = append(slices.Clone(from.Ports), port("one", "172.18.0.4", 9000, 90))
		steps, err := New(firewall.IPv4).Change(from, to)
		if err != nil || len(steps) != 1 {
			t.Fatalf("%d ports: %v %v", n, steps, err)
		}
		d := steps[0].(*Step).Diff
		if d.AddTable || d.DelTable || len(d.Chains) != 0 || len(d.Sets) != 0 {
			t.Errorf("%d ports: one more port changed the table's structure: %+v", n, d)
		}
		elems := 0
		for _, e := range d.Elems {
			elems += len(e.Add) + len(e.Del)
		}
		if elems != 3 {
			t.Errorf("%d ports: one more port is 3 elements (DNAT, accept, hairpin), got %d: %s", n, elems, printed(t, steps))
		}
	}
}

// Two mappings onto one container port share its accept element:
// removing one keeps it.
func TestSharedElementsStay(t *testing.T) {
	from := lesson()
	from.Ports = append(from.Ports, port("web", "172.18.0.2", 8081, 80))
	to := lesson()
	steps, err := New(firewall.IPv4).Change(from, to)
	if err != nil {
		t.Fatal(err)
	}
	got := printed(t, steps)
	if !strings.Contains(got, "delete element ip minidocker-bridges dnat-ports-any { tcp . 8081 : 172.18.0.2 . 80 }") || strings.Contains(got, "published-ports") {
		t.Errorf("removing one of two mappings onto port 80:\n%s", got)
	}
}

// The last network takes the whole table; undoing that puts it all back.
func TestLastNetworkDeletesTheTable(t *testing.T) {
	in := lesson()
	d := Between(IPv4, TableName, Layout(IPv4, in), nil)
	if got := strings.Join(d.Script(), "\n"); got != "delete table ip minidocker-bridges" {
		t.Errorf("last network: %s", got)
	}
	back := strings.Join(d.Inverse().Script(), "\n")
	want := strings.Join(Between(IPv4, TableName, nil, Layout(IPv4, in)).Script(), "\n")
	if back != want {
		t.Errorf("undo of the deletion:\n%s\nwant:\n%s", back, want)
	}
}

// Forwarding held on by us: the forward chain drops by policy.
func TestForwardDropIsThePolicy(t *testing.T) {
	from, to := lesson(), lesson()
	to.ForwardDrop = true
	steps, err := New(firewall.IPv4).Change(from, to)
	if err != nil {
		t.Fatal(err)
	}
	if got := printed(t, steps); !strings.Contains(got, "add chain ip minidocker-bridges filter-FORWARD { type filter hook forward priority filter; policy drop; }") {
		t.Errorf("ForwardDrop:\n%s", got)
	}
}

// A step survives the journal: what it undoes after a crash is what it
// applied.
func TestStepJournals(t *testing.T) {
	steps, err := New(firewall.IPv4).Change(firewall.Intent{}, lesson())
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(steps[0])
	if err != nil {
		t.Fatal(err)
	}
	var back Step
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if a, b := printed(t, steps), strings.Join(back.Commands(), "\n"); a != b {
		t.Errorf("journaled step prints\n%s\nwant\n%s", b, a)
	}
	if a, b := strings.Join(steps[0].UndoCommands(), "\n"), strings.Join(back.UndoCommands(), "\n"); a != b {
		t.Errorf("journaled undo prints\n%s\nwant\n%s", b, a)
	}
}

// Elements encode as the kernel takes them and decode back.
func TestElementsRoundTrip(t *testing.T) {
	for _, f := range []Family{IPv4, IPv6} {
		addr := "172.18.0.2"
		if f == IPv6 {
			addr = "2001:db8::2"
		}
		for _, s := range declarations(f) {
			var e Elem
			switch s.Name {
			case MapForwardIn:
				e = Elem{Key: strconv.Quote("mdn-x"), Data: "jump filter-forward-in__mdn-x"}
			case MapDNATAny:
				e = Elem{Key: "udp . 53", Data: addr + " . 5353"}
			case MapDNATAddr:
				e = Elem{Key: addr + " . tcp . 8080", Data: addr + " . 80"}
			case SetHairpin:
				e = Elem{Key: addr + " . " + addr + " . tcp . 80"}
			case SetPublished, SetLoopback:
				e = Elem{Key: addr + " . tcp . 65535"}
			default:
				continue
			}
			el, err := nftElem(s, e)
			if err != nil {
				t.Fatalf("%s %s: %v", f, s.Name, err)
			}
			if s.verdicts() {
				// The kernel lists a verdict as nested attributes.
				el.Val = verdictAttrs(el.VerdictData)
			}
			back, err := elemOf(s, el)
			if err != nil || back != e {
				t.Errorf("%s %s: %q came back as %q (%v)", f, s.Name, e, back, err)
			}
		}
	}
}

func verdictAttrs(v *expr.Verdict) []byte {
	attr := func(typ uint16, data []byte) []byte {
		n := 4 + len(data)
		b := []byte{byte(n), byte(n >> 8), byte(typ), byte(typ >> 8)}
		b = append(b, data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	code := uint32(int32(v.Kind))
	return append(attr(1, []byte{byte(code >> 24), byte(code >> 16), byte(code >> 8), byte(code)}), attr(2, append([]byte(v.Chain), 0))...)
}

// Rules compile to what nft's own compiler writes for their text
// (checked with 'nft --debug=netlink'): a prefix, an interface prefix,
// a concatenated lookup and a map's DNAT.
func TestRulesCompileAsNftDoes(t *testing.T) {
	r := Rule{Match: []Match{{Key: "iifname", Neg: true, Val: "mdn-x"}, {Key: "daddr", Val: "172.18.0.0/20"}}, Verdict: Verdict{Kind: "drop"}}
	es, err := r.Exprs(IPv4)
	if err != nil {
		t.Fatal(err)
	}
	if c := es[1].(*expr.Cmp); c.Op != expr.CmpOpNeq || len(c.Data) != 16 {
		t.Errorf("an interface name compares 16 bytes: %+v", c)
	}
	if b, ok := es[3].(*expr.Bitwise); !ok || b.Mask[2] != 0xf0 {
		t.Errorf("a /20 is masked: %+v", es[3])
	}
	prefix, _ := Match{Key: "oifname", Val: "br-*"}.exprs(IPv4)
	if c := prefix[1].(*expr.Cmp); string(c.Data) != "br-" {
		t.Errorf("br-* compares the prefix only: %q", c.Data)
	}
	dnat, _ := Verdict{Kind: "dnat-map", Fields: []string{"daddr", "l4proto", "dport"}, Arg: MapDNATAddr}.exprs(IPv6)
	// IPv6: the address fills register 1; the protocol and port follow in
	// registers 2 and 13, as nft allocates them.
	if m := dnat[1].(*expr.Meta); m.Register != 2 {
		t.Errorf("l4proto after an IPv6 address goes to register 2, got %d", m.Register)
	}
	if p := dnat[2].(*expr.Payload); p.DestRegister != 13 {
		t.Errorf("the port goes to register 13, got %d", p.DestRegister)
	}
	if n := dnat[4].(*expr.NAT); n.RegProtoMin != 2 || n.Family != 10 {
		t.Errorf("the DNAT takes the port from register 2: %+v", n)
	}
}

// Compare finds every way a kernel table differs from the intent.
func TestCompareFindsDrift(t *testing.T) {
	want := Layout(IPv4, lesson())
	k := &Kernel{Family: IPv4, Name: TableName, Sets: map[string]*Set{}}
	for _, s := range want.Sets {
		cp := *s
		k.Sets[s.Name] = &cp
	}
	k.Sets[MapDNATAny].Elems = nil // the DNAT element deleted
	for _, c := range want.Chains {
		kc := &KChain{Name: c.Name, Base: c.Base}
		for i := range c.Rules {
			if c.Name == ChainRaw && strings.Contains(c.Rules[i].Text(IPv4), "127.0.0.0/8") {
				continue // the CVE-2020-8558 drop deleted
			}
			kc.Rules = append(kc.Rules, KRule{Rule: &c.Rules[i]})
		}
		if c.Name == ChainDNAT {
			kc.Rules = append(kc.Rules, KRule{Handle: 99}) // one added by hand
		}
		k.Chains = append(k.Chains, kc)
	}
	var got []string
	for _, d := range Compare(k, want, true) {
		got = append(got, d.What)
	}
	all := strings.Join(got, "\n")
	for _, w := range []string{
		"element ip minidocker-bridges dnat-ports-any { tcp . 8080 : 172.18.0.2 . 80 }",
		`rule ip minidocker-bridges raw-PREROUTING iifname "mdn-x" ip daddr 127.0.0.0/8 drop`,
		"rule ip minidocker-bridges nat-prerouting-and-output handle 99",
	} {
		if !slices.Contains(got, w) {
			t.Errorf("Compare missed %q:\n%s", w, all)
		}
	}
	if len(got) != 3 {
		t.Errorf("Compare found more than the three changes:\n%s", all)
	}
	// Repair rewrites the two chains and adds the element.
	d := Repair(k, want)
	var chains []string
	for _, c := range d.Chains {
		chains = append(chains, c.New.Name)
	}
	slices.Sort(chains)
	if strings.Join(chains, " ") != ChainRaw+" "+ChainDNAT && strings.Join(chains, " ") != ChainDNAT+" "+ChainRaw {
		t.Errorf("Repair rewrites %v", chains)
	}
	if len(d.Elems) != 1 || len(d.Elems[0].Add) != 1 {
		t.Errorf("Repair adds the element: %+v", d.Elems)
	}
}

// A packet's way through the table, as trace tells it.
func TestWalk(t *testing.T) {
	want := Layout(IPv4, lesson())
	k := &Kernel{Family: IPv4, Name: TableName, Sets: map[string]*Set{}}
	for _, s := range want.Sets {
		k.Sets[s.Name] = s
	}
	for _, c := range want.Chains {
		kc := &KChain{Name: c.Name, Base: c.Base}
		for i := range c.Rules {
			kc.Rules = append(kc.Rules, KRule{Rule: &c.Rules[i]})
		}
		k.Chains = append(k.Chains, kc)
	}
	b := &Backend{family: IPv4, kernel: k, read: true}
	in := lesson()
	v, _ := b.Walk(in, firewall.NatPrerouting, firewall.Packet{In: "eth0", Dst: netip.MustParseAddr("192.0.2.1"), Proto: "tcp", DPort: 8080, LocalDst: true})
	if v.Target != "DNAT" || v.To != "172.18.0.2:80" {
		t.Errorf("DNAT of a published port: %+v", v)
	}
	v, _ = b.Walk(in, firewall.FilterForward, firewall.Packet{In: "mdn-y", Out: "mdn-x", Src: netip.MustParseAddr("172.19.0.2"), Dst: netip.MustParseAddr("172.18.0.3"), Proto: "tcp", DPort: 22})
	if v.Target != "DROP" || v.Path[len(v.Path)-1].Line != `drop comment "UNPUBLISHED PORT DROP"` {
		t.Errorf("another network to an unpublished port: %+v", v)
	}
	v, _ = b.Walk(in, firewall.RawPrerouting, firewall.Packet{In: "eth0", Dst: netip.MustParseAddr("172.18.0.2"), Proto: "tcp", DPort: 80})
	if v.Target != "DROP" || !strings.Contains(v.Path[0].Line, "DROP DIRECT ACCESS") {
		t.Errorf("direct access: %+v", v)
	}
}
