package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The kernel's own account of a probe: a rule in a table of its own,
// ahead of every other chain, sets nftrace on the probe's packets, and
// nf_tables then reports each rule, policy and return they meet (ours,
// Docker's and iptables-nft's alike) on the NFTRACE netlink group.

// TraceTable is the table that marks probes, while one is sent.
const TraceTable = "minidocker-trace"

// TraceMatch is what marks a probe's packets.
type TraceMatch struct {
	Family Family
	Src    []netip.Addr // the sending sandbox's addresses; none: the host sends (output hook)
	Dst    netip.Addr   // when known (not a name)
	Proto  string       // icmp, tcp, udp
	DPort  int
}

// TraceEvent is one thing nf_tables reports of a marked packet.
type TraceEvent struct {
	ID      uint32
	net, th []byte // the packet's network and transport headers, in a chain's first event
	Table   string
	Chain   string
	Handle  uint64
	Type    string // rule, policy, return
	Verdict string // accept, drop, continue, jump CHAIN, return...
}

// Tracer listens for one probe's events.
type Tracer struct {
	m      TraceMatch
	c      *netlink.Conn
	diff   *Diff
	events chan []TraceEvent
}

func (m TraceMatch) table() *Table {
	var match []Match
	proto := m.Proto
	if proto == "icmp" && m.Family == IPv6 {
		proto = "icmpv6"
	}
	match = append(match, Match{Key: "l4proto", Val: proto})
	if m.DPort != 0 {
		match = append(match, Match{Key: proto + "-dport", Val: strconv.Itoa(m.DPort)})
	}
	if m.Dst.IsValid() {
		match = append(match, Match{Key: "daddr", Val: m.Dst.String()})
	}
	mark := func(src netip.Addr) Rule {
		mm := match
		if src.IsValid() {
			mm = append([]Match{{Key: "saddr", Val: src.String()}}, match...)
		}
		return Rule{Match: mm, Verdict: Verdict{Kind: "nftrace"}, Why: "marks the probe for the kernel's trace"}
	}
	// The host's probe meets output first; a sandbox's, prerouting: a
	// rule per address it may be sent from.
	c := &Chain{Name: "trace-output", Base: &Base{Type: "filter", Hook: "output", Priority: -350}, Rules: []Rule{mark(netip.Addr{})}}
	if len(m.Src) > 0 {
		c = &Chain{Name: "trace-prerouting", Base: &Base{Type: "filter", Hook: "prerouting", Priority: -350}}
		for _, a := range m.Src {
			c.Rules = append(c.Rules, mark(a))
		}
	}
	return &Table{Family: m.Family, Name: TraceTable, Chains: []*Chain{c}}
}

// StartTrace joins the trace group and adds the marking rule.
func StartTrace(m TraceMatch) (*Tracer, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{Groups: 1 << (unix.NFNLGRP_NFTRACE - 1)})
	if err != nil {
		return nil, fmt.Errorf("nftables trace: %w", err)
	}
	t := &Tracer{m: m, c: c, diff: Between(m.Family, TraceTable, nil, m.table()), events: make(chan []TraceEvent, 1)}
	if err := t.diff.Apply(); err != nil {
		c.Close()
		return nil, err
	}
	go t.listen()
	return t, nil
}

func (t *Tracer) listen() {
	var out []TraceEvent
	for {
		msgs, err := t.c.Receive()
		if err != nil {
			t.events <- out
			return
		}
		for _, m := range msgs {
			if e, ok := traceEvent(m); ok {
				out = append(out, e)
			}
		}
	}
}

// Stop removes the marking rule and returns the events of the probe's
// first packet.
func (t *Tracer) Stop() ([]TraceEvent, error) {
	_ = t.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	events := <-t.events
	t.c.Close()
	err := t.diff.Inverse().Apply()
	// The probe's first packet is the first our marking rule met whose
	// headers are the probe's; its events follow, under its trace ID,
	// until our rule marks a packet of that ID again (the kernel's IDs
	// come from the packets' addresses, which a later packet may reuse).
	var out []TraceEvent
	id, in, done := uint32(0), false, false
	for _, e := range events {
		marking := e.Table == TraceTable && e.Type == "rule" && len(e.net) > 0
		switch {
		case done:
		case marking && !in && t.m.matches(e):
			id, in = e.ID, true
		case marking && in && e.ID == id:
			done = true
		case in && e.ID == id && e.Table != TraceTable && !(len(t.m.Src) == 0 && strings.Contains(e.Chain, "PREROUTING")):
			// (A packet the host sends meets no prerouting chain: an
			// event there is of a looped copy.)
			out = append(out, e)
		}
	}
	return out, err
}

// matches reports whether a marking event's packet is the probe: its
// addresses, protocol and port as the kernel copied its headers.
func (m TraceMatch) matches(e TraceEvent) bool {
	var src, dst netip.Addr
	var proto byte
	switch {
	case m.Family == IPv4 && len(e.net) >= 20:
		src, _ = netip.AddrFromSlice(e.net[12:16])
		dst, _ = netip.AddrFromSlice(e.net[16:20])
		proto = e.net[9]
	case m.Family == IPv6 && len(e.net) >= 40:
		src, _ = netip.AddrFromSlice(e.net[8:24])
		dst, _ = netip.AddrFromSlice(e.net[24:40])
		proto = e.net[6]
	default:
		return false
	}
	if len(m.Src) > 0 && !slices.Contains(m.Src, src) || m.Dst.IsValid() && m.Dst != dst {
		return false
	}
	want := map[string]byte{"icmp": unix.IPPROTO_ICMP, "tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP}[m.Proto]
	if m.Proto == "icmp" && m.Family == IPv6 {
		want = unix.IPPROTO_ICMPV6
	}
	if proto != want {
		return false
	}
	return m.DPort == 0 || len(e.th) >= 4 && int(binary.BigEndian.Uint16(e.th[2:4])) == m.DPort
}

func traceEvent(m netlink.Message) (TraceEvent, bool) {
	if m.Header.Type&0xff != unix.NFT_MSG_TRACE || len(m.Data) < 4 {
		return TraceEvent{}, false
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return TraceEvent{}, false
	}
	ad.ByteOrder = binary.BigEndian
	var e TraceEvent
	policy := uint32(0)
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_TRACE_TABLE:
			e.Table = ad.String()
		case unix.NFTA_TRACE_CHAIN:
			e.Chain = ad.String()
		case unix.NFTA_TRACE_RULE_HANDLE:
			e.Handle = ad.Uint64()
		case unix.NFTA_TRACE_ID:
			e.ID = ad.Uint32()
		case unix.NFTA_TRACE_POLICY:
			policy = ad.Uint32()
		case unix.NFTA_TRACE_NETWORK_HEADER:
			e.net = ad.Bytes()
		case unix.NFTA_TRACE_TRANSPORT_HEADER:
			e.th = ad.Bytes()
		case unix.NFTA_TRACE_TYPE:
			e.Type = map[uint32]string{unix.NFT_TRACETYPE_RULE: "rule", unix.NFT_TRACETYPE_POLICY: "policy", unix.NFT_TRACETYPE_RETURN: "return"}[ad.Uint32()]
		case unix.NFTA_TRACE_VERDICT:
			ad.Nested(func(nd *netlink.AttributeDecoder) error {
				code, chain := int32(0), ""
				for nd.Next() {
					switch nd.Type() {
					case unix.NFTA_VERDICT_CODE:
						code = int32(nd.Uint32())
					case unix.NFTA_VERDICT_CHAIN:
						chain = nd.String()
					}
				}
				e.Verdict = verdictName(code, chain)
				return nil
			})
		}
	}
	if e.Type == "policy" {
		e.Verdict = verdictName(int32(policy), "")
	}
	return e, ad.Err() == nil && e.Chain != ""
}

// The netfilter verdicts (linux/netfilter.h).
const (
	nfDrop   = 0
	nfAccept = 1
)

func verdictName(code int32, chain string) string {
	switch code {
	case nfAccept:
		return "accept"
	case nfDrop:
		return "drop"
	case unix.NFT_CONTINUE:
		return "continue"
	case unix.NFT_BREAK:
		return "break"
	case unix.NFT_JUMP:
		return "jump " + chain
	case unix.NFT_GOTO:
		return "goto " + chain
	case unix.NFT_RETURN:
		return "return"
	}
	return strconv.Itoa(int(code))
}

// Account renders the events, each rule of ours by its text (the
// kernel's rules, read now, matched to want's by their expressions), a
// rule of another table by what other says of the chain's i-th rule (the
// iptables-save line of an iptables-nft rule), and what the kernel
// decided: where the packet was dropped, if it was.
func Account(events []TraceEvent, f Family, want *Table, other func(table, chain string, i int) (string, bool)) (lines []string, dropped string) {
	text := map[string]string{}
	c, _, err := Conn("")
	if err == nil {
		if k, err := Read(c, f, TableName, want, true); err == nil && k != nil {
			for _, kc := range k.Chains {
				for _, r := range kc.Rules {
					if r.Rule != nil {
						text[kc.Name+" "+strconv.FormatUint(r.Handle, 10)] = r.Rule.Text(f)
					}
				}
			}
		}
	}
	position := func(table, chain string, handle uint64) int {
		if c == nil {
			return -1
		}
		t := &nftables.Table{Family: f.nft(), Name: table}
		rules, err := c.GetRules(t, &nftables.Chain{Table: t, Name: chain})
		if err != nil {
			return -1
		}
		for i, r := range rules {
			if r.Handle == handle {
				return i
			}
		}
		return -1
	}
	for _, e := range events {
		where := string(f) + " " + e.Table + " " + e.Chain
		what := e.Type
		switch {
		case e.Type == "policy":
			what = "the chain's policy"
		case e.Type == "rule" && e.Handle == 0:
			what = "no rule matches" // the kernel's event at a chain's end
		case e.Type == "rule":
			what = "rule handle " + strconv.FormatUint(e.Handle, 10)
			if t, ok := text[e.Chain+" "+strconv.FormatUint(e.Handle, 10)]; ok && e.Table == TableName {
				what = t
			} else if i := position(e.Table, e.Chain, e.Handle); i >= 0 && other != nil && e.Table != TableName {
				if t, ok := other(e.Table, e.Chain, i); ok {
					what = t
				}
			}
		}
		lines = append(lines, fmt.Sprintf("%s: %s -> %s", where, what, e.Verdict))
		if e.Verdict == "drop" && dropped == "" {
			dropped = where + ": " + what
		}
	}
	return lines, dropped
}
