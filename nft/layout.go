package nft

import (
	"strconv"

	"github.com/minidocker-net/minidocker-net/firewall"
)

// Names of the verdict maps, base chains and sets, Docker 29's where
// Docker has them.
const (
	MapForwardIn  = "filter-forward-in-jumps"
	MapForwardOut = "filter-forward-out-jumps"
	MapNatIn      = "nat-postrouting-in-jumps"
	MapNatOut     = "nat-postrouting-out-jumps"

	ChainForward     = "filter-FORWARD"
	ChainPrerouting  = "nat-PREROUTING"
	ChainOutput      = "nat-OUTPUT"
	ChainPostrouting = "nat-POSTROUTING"
	ChainRaw         = "raw-PREROUTING"
	ChainDNAT        = "nat-prerouting-and-output"

	// Published ports, element by element (Docker 29 writes a rule per
	// port; a set element costs the same whatever the number).
	SetPublished = "published-ports" // container address . proto . port: forwarded in
	MapDNATAddr  = "dnat-ports-addr" // host address . proto . port -> container address . port
	MapDNATAny   = "dnat-ports-any"  // proto . port -> container address . port
	SetHairpin   = "hairpin-ports"   // a sandbox reaching its own published port
	SetLoopback  = "loopback-ports"  // host ports bound to a loopback address
	chainInPre   = "filter-forward-in__"
	chainOutPre  = "filter-forward-out__"
	natInPre     = "nat-postrouting-in__"
	natOutPre    = "nat-postrouting-out__"
	userChainWhy = "minidocker-net skeleton"
)

// familyOf is the family an intent's networks are in.
func familyOf(in firewall.Intent) Family {
	if len(in.Networks) > 0 && in.Networks[0].Subnet.Addr().Is6() {
		return IPv6
	}
	return IPv4
}

func jump(chain string) string { return "jump " + chain }

// Skeleton is the table an intent calls for, without the published
// ports' elements (Ports adds those): base chains, verdict maps with an
// element per bridge, and each network's chains. A pure function of the
// intent, so a command's change is the difference of two; nil when there
// is no network.
func Skeleton(f Family, in firewall.Intent) *Table {
	if len(in.Networks) == 0 {
		return nil
	}
	policy := "accept"
	if in.ForwardDrop {
		policy = "drop"
	}
	t := &Table{Family: f, Name: TableName, Sets: declarations(f)}
	output := Rule{Match: []Match{{Key: "fib-daddr"}}, Verdict: Verdict{Kind: "jump", Arg: ChainDNAT},
		Why: "published ports: traffic from the host itself, localhost included"}
	var notLinkLocal []Match
	if f == IPv6 {
		output.Match = append([]Match{{Key: "daddr", Neg: true, Val: "::1"}}, output.Match...)
		output.Why = "published ports: traffic from the host itself (not ::1, which cannot be routed into a bridge)"
		notLinkLocal = []Match{{Key: "saddr", Neg: true, Val: "fe80::/10"}}
	}
	t.Chains = []*Chain{
		{Name: ChainForward, Base: &Base{Type: "filter", Hook: "forward", Priority: 0, Policy: policy}, Rules: []Rule{
			{Verdict: Verdict{Kind: "vmap", Fields: []string{"oifname"}, Arg: MapForwardIn}, Why: "traffic into a bridge: its network decides"},
			{Verdict: Verdict{Kind: "vmap", Fields: []string{"iifname"}, Arg: MapForwardOut}, Why: "traffic out of a bridge: its network decides"},
		}},
		{Name: ChainPrerouting, Base: &Base{Type: "nat", Hook: "prerouting", Priority: -100}, Rules: []Rule{
			{Match: []Match{{Key: "fib-daddr"}}, Verdict: Verdict{Kind: "jump", Arg: ChainDNAT}, Why: "published ports: traffic to a local address"},
		}},
		{Name: ChainOutput, Base: &Base{Type: "nat", Hook: "output", Priority: -100}, Rules: []Rule{output}},
		{Name: ChainPostrouting, Base: &Base{Type: "nat", Hook: "postrouting", Priority: 100}, Rules: []Rule{
			{Verdict: Verdict{Kind: "vmap", Fields: []string{"iifname"}, Arg: MapNatOut}, Why: "leaving a bridge: its network's masquerade"},
			{Verdict: Verdict{Kind: "vmap", Fields: []string{"oifname"}, Arg: MapNatIn}, Why: "entering a bridge: replies must come back"},
		}},
		{Name: ChainRaw, Base: &Base{Type: "filter", Hook: "prerouting", Priority: -300}},
		{Name: ChainDNAT, Rules: []Rule{
			{Match: notLinkLocal, Verdict: Verdict{Kind: "dnat-map", Fields: []string{"daddr", "l4proto", "dport"}, Arg: MapDNATAddr}, Comment: "DNAT", Why: "published ports bound to one host address"},
			{Match: notLinkLocal, Verdict: Verdict{Kind: "dnat-map", Fields: []string{"l4proto", "dport"}, Arg: MapDNATAny}, Comment: "DNAT", Why: "published ports bound to every host address"},
		}},
	}
	// The networks' raw rules come after the skeleton's, in the order the
	// networks are named, each network's own together: one more network
	// appends its rules, and deletes none (a deletion makes the batch's
	// socket wait for the kernel to free what it deleted).
	raw := t.chain(ChainRaw)
	raw.Rules = append(raw.Rules, Rule{Match: []Match{{Key: "iifname", Neg: true, Val: "lo"}, {Key: "set", Fields: []string{"daddr", "l4proto", "dport"}, Val: SetLoopback}},
		Verdict: Verdict{Kind: "drop"}, Comment: "DROP REMOTE LOOPBACK", Why: "ports published on a loopback address: from the host only"})
	for _, n := range in.Networks {
		networkInto(t, raw, n)
	}
	return t
}

// declarations are the table's sets and maps, empty.
func declarations(f Family) []*Set {
	a := f.addrType()
	vmap := func(name, why string) *Set {
		return &Set{Name: name, Key: []string{"ifname"}, Data: []string{"verdict"}, Why: why}
	}
	return []*Set{
		vmap(MapForwardIn, "forwarded into a bridge: that network's filter-forward-in chain"),
		vmap(MapForwardOut, "forwarded out of a bridge: that network's filter-forward-out chain"),
		vmap(MapNatIn, "leaving into a bridge: that network's nat-postrouting-in chain"),
		vmap(MapNatOut, "leaving from a bridge: that network's nat-postrouting-out chain"),
		{Name: SetPublished, Key: []string{a, "inet_proto", "inet_service"}, Why: "published ports: forwarded to a sandbox's port"},
		{Name: MapDNATAddr, Key: []string{a, "inet_proto", "inet_service"}, Data: []string{a, "inet_service"}, Why: "published ports bound to one host address"},
		{Name: MapDNATAny, Key: []string{"inet_proto", "inet_service"}, Data: []string{a, "inet_service"}, Why: "published ports bound to every host address"},
		{Name: SetHairpin, Key: []string{a, a, "inet_proto", "inet_service"}, Why: "a sandbox reaching its own published port: masqueraded, so the reply comes back"},
		{Name: SetLoopback, Key: []string{a, "inet_proto", "inet_service"}, Why: "published ports bound to a loopback address: reachable from the host only"},
	}
}

// networkInto adds one network's chains, verdict-map elements and raw
// rules to the table.
func networkInto(t *Table, raw *Chain, n firewall.Network) {
	b, s := n.Bridge, n.Subnet.String()
	why := func(w string) string { return "network " + n.Name + ": " + w }
	v6 := n.Subnet.Addr().Is6()
	est := Rule{Match: []Match{{Key: "ct"}}, Verdict: Verdict{Kind: "accept"}, Why: why("replies to connections already accepted")}
	in := &Chain{Name: chainInPre + b, Rules: []Rule{est}}
	out := &Chain{Name: chainOutPre + b, Rules: []Rule{est}}
	icc := Rule{Match: []Match{{Key: "iifname", Val: b}}, Verdict: Verdict{Kind: "accept"}, Comment: "ICC", Why: why("sandboxes on the network talk to each other")}
	if !n.ICC {
		icc = Rule{Match: []Match{{Key: "iifname", Val: b}}, Verdict: Verdict{Kind: "drop"}, Comment: "ICC", Why: why("icc=false: sandboxes on the network cannot talk")}
	}
	addElem := func(set, chain, w string) {
		st := t.set(set)
		st.Elems = append(st.Elems, Elem{Key: strconv.Quote(b), Data: jump(chain), Why: why(w)})
	}
	t.Chains = append(t.Chains, in, out)
	addElem(MapForwardIn, in.Name, "traffic into the network")
	addElem(MapForwardOut, out.Name, "traffic out of the network")
	if n.Internal {
		icc.Match = nil
		in.Rules = append(in.Rules,
			Rule{Match: []Match{{Key: "iifname", Neg: true, Val: b}}, Verdict: Verdict{Kind: "drop"}, Comment: "INTERNAL NETWORK INGRESS", Why: why("internal: nothing enters from outside the network")},
			icc)
		out.Rules = append(out.Rules,
			Rule{Match: []Match{{Key: "oifname", Neg: true, Val: b}}, Verdict: Verdict{Kind: "drop"}, Comment: "INTERNAL NETWORK EGRESS", Why: why("internal: nothing leaves the network")})
		return
	}
	in.Rules = append(in.Rules, icc,
		Rule{Match: []Match{{Key: "set", Fields: []string{"daddr", "l4proto", "dport"}, Val: SetPublished}}, Verdict: Verdict{Kind: "accept"}, Comment: "PUBLISHED PORT", Why: why("published ports are reachable, from every network too")},
		Rule{Verdict: Verdict{Kind: "drop"}, Comment: "UNPUBLISHED PORT DROP", Why: why("nothing else enters the network: unpublished ports stay closed")})
	// Our accept of traffic leaving a network must not let it into
	// Docker's bridges, where Docker relies on its own FORWARD policy.
	out.Rules = append(out.Rules,
		Rule{Match: []Match{{Key: "oifname", Val: "docker0"}}, Verdict: Verdict{Kind: "drop"}, Why: why("isolation from Docker's default network")},
		Rule{Match: []Match{{Key: "oifname", Val: "br-*"}}, Verdict: Verdict{Kind: "drop"}, Why: why("isolation from Docker's user-defined networks (bridges br-<id>)")},
		Rule{Verdict: Verdict{Kind: "accept"}, Comment: "OUTGOING", Why: why("traffic from the network to outside")})
	natOut := &Chain{Name: natOutPre + b}
	if n.Masquerade {
		natOut.Rules = []Rule{{Match: []Match{{Key: "oifname", Neg: true, Val: b}, {Key: "saddr", Val: s}}, Verdict: Verdict{Kind: "masquerade"}, Comment: "MASQUERADE", Why: why("sandboxes reach outside as the host")}}
	}
	natIn := &Chain{Name: natInPre + b, Rules: []Rule{
		{Match: []Match{{Key: "fib-saddr"}}, Verdict: Verdict{Kind: "masquerade"}, Comment: "MASQUERADE FROM HOST", Why: why("host to sandbox via localhost or a host address: reply comes back")},
		{Match: []Match{{Key: "set", Fields: []string{"saddr", "daddr", "l4proto", "dport"}, Val: SetHairpin}}, Verdict: Verdict{Kind: "masquerade"}, Comment: "MASQ TO OWN PORT", Why: why("a sandbox reaching its own published port")},
	}}
	t.Chains = append(t.Chains, natOut, natIn)
	addElem(MapNatOut, natOut.Name, "leaving the network")
	addElem(MapNatIn, natIn.Name, "entering the network")
	if !v6 {
		raw.Rules = append(raw.Rules, Rule{Match: []Match{{Key: "iifname", Val: b}, {Key: "daddr", Val: "127.0.0.0/8"}}, Verdict: Verdict{Kind: "drop"},
			Why: why("route_localnet is on for the bridge: no sandbox may reach the host's 127/8 (CVE-2020-8558)")})
	}
	// Nobody routes to a sandbox directly (Docker's per-sandbox raw drop,
	// written once per network); the gateway is the host's own address.
	raw.Rules = append(raw.Rules, Rule{Match: []Match{{Key: "iifname", Neg: true, Val: b}, {Key: "daddr", Val: s}, {Key: "daddr", Neg: true, Val: n.Gateway.String()}},
		Verdict: Verdict{Kind: "drop"}, Comment: "DROP DIRECT ACCESS", Why: why("no direct routing to its sandboxes from off the bridge")})
}

// SetElem is an element of one of the table's sets.
type SetElem struct {
	Set string
	Elem
}

// PortElems are one mapping's elements, port by port across a range: the
// DNAT, the forward accept, the sandbox's way to its own port, and for a
// loopback host address the drop of packets from anywhere else.
func PortElems(p firewall.Port) []SetElem {
	why := "sandbox " + p.Sandbox + ": " + p.String()
	ctr := p.IP.String()
	proto := p.Proto
	bound := p.HostIP.IsValid() && !p.HostIP.IsUnspecified()
	out := make([]SetElem, 0, 4*(p.HostPortEnd-p.HostPort+1))
	for i := 0; i <= p.HostPortEnd-p.HostPort; i++ {
		hp, cp := strconv.Itoa(p.HostPort+i), strconv.Itoa(p.Port+i)
		to := ctr + " . " + cp
		if bound {
			out = append(out, SetElem{MapDNATAddr, Elem{Key: p.HostIP.String() + " . " + proto + " . " + hp, Data: to, Why: why}})
		} else {
			out = append(out, SetElem{MapDNATAny, Elem{Key: proto + " . " + hp, Data: to, Why: why}})
		}
		out = append(out,
			SetElem{SetPublished, Elem{Key: ctr + " . " + proto + " . " + cp, Why: why}},
			SetElem{SetHairpin, Elem{Key: ctr + " . " + ctr + " . " + proto + " . " + cp, Why: why + " (the sandbox reaching its own port)"}})
		if p.HostIP.IsLoopback() {
			out = append(out, SetElem{SetLoopback, Elem{Key: p.HostIP.String() + " . " + proto + " . " + hp, Why: why + " (loopback only)"}})
		}
	}
	return out
}

// Layout is the whole table an intent calls for: the skeleton with every
// published port's elements.
func Layout(f Family, in firewall.Intent) *Table {
	t := Skeleton(f, in)
	if t == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, p := range in.Ports {
		for _, e := range PortElems(p) {
			if k := e.Set + " " + e.Key; !seen[k] {
				seen[k] = true
				st := t.set(e.Set)
				st.Elems = append(st.Elems, e.Elem)
			}
		}
	}
	return t
}
