package nft

import (
	"net/netip"
	"strconv"

	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
)

func init() {
	plan.Register("nftables-dns", func() plan.Step { return &DNS{} })
}

// DNS is Docker 29's docker-dns table inside a sandbox, with our name:
// queries to 127.0.0.11:53 go to the resolver's sockets in the namespace,
// and replies come from port 53.
type DNS struct {
	Netns string `json:"netns"`
	IP    string `json:"ip"`
	Port  int    `json:"port"`
}

// Table is what the sandbox's table holds.
func (s *DNS) Table() *Table {
	at := s.IP + ":" + strconv.Itoa(s.Port)
	from := netip.AddrPortFrom(netip.MustParseAddr(s.IP), 53).String()
	p := strconv.Itoa(s.Port)
	var dnat, snat []Rule
	for _, proto := range []string{"udp", "tcp"} {
		dnat = append(dnat, Rule{Match: []Match{{Key: "daddr", Val: s.IP}, {Key: proto + "-dport", Val: "53"}}, Verdict: Verdict{Kind: "dnat", Arg: at},
			Why: "the embedded DNS: queries to " + s.IP + ":53 reach its " + proto + " socket in this namespace"})
		snat = append(snat, Rule{Match: []Match{{Key: "saddr", Val: s.IP}, {Key: proto + "-sport", Val: p}}, Verdict: Verdict{Kind: "snat", Arg: from},
			Why: "the embedded DNS: replies come from port 53"})
	}
	return &Table{Family: IPv4, Name: DNSTable, Chains: []*Chain{
		{Name: "dns-dnat", Base: &Base{Type: "nat", Hook: "output", Priority: -100}, Rules: dnat},
		{Name: "dns-snat", Base: &Base{Type: "nat", Hook: "postrouting", Priority: 100}, Rules: snat},
	}}
}

func (s *DNS) diff() *Diff {
	d := Between(IPv4, DNSTable, nil, s.Table())
	d.Netns = s.Netns
	return d
}

func (s *DNS) Kind() string { return "nftables-dns" }

func (s *DNS) Apply(ctx *plan.Context) error { return (&Step{*s.diff()}).Apply(ctx) }

// Undo deletes the table, when the namespace and the table are there.
func (s *DNS) Undo(ctx *plan.Context) error { return (&Step{*s.diff()}).Undo(ctx) }

func (s *DNS) Commands() []string     { return script(s.diff()) }
func (s *DNS) UndoCommands() []string { return script(s.diff().Inverse()) }

// Satisfied: the sandbox's table holds the rules ('ip netns exec S nft
// flush ruleset' takes them).
func (s *DNS) Satisfied(*plan.Context) (bool, error) {
	if !nsnet.Exists(s.Netns) {
		return false, nil
	}
	c, done, err := Conn(s.Netns)
	if err != nil {
		return false, nil
	}
	defer done()
	want := s.Table()
	k, err := Read(c, IPv4, DNSTable, want, true)
	if err != nil || k == nil {
		return false, nil
	}
	return len(Compare(k, want, false)) == 0, nil
}

// Released: a whole sandbox's teardown leaves the table to go with its
// namespace.
func (s *DNS) Released() plan.Step { return &firewall.DNSReleased{Netns: s.Netns} }
