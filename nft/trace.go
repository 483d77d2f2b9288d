package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
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
	chain := func(name, hook string, src netip.Addr) *Chain {
		mm := match
		if src.IsValid() {
			mm = append([]Match{{Key: "saddr", Val: src.String()}}, match...)
		}
		return &Chain{Name: name, Base: &Base{Type: "filter", Hook: hook, Priority: -350},
			Rules: []Rule{{Match: mm, Verdict: Verdict{Kind: "nftrace"}, Why: "marks the probe for the kernel's trace"}}}
	}
	t := &Table{Family: m.Family, Name: TraceTable}
	if len(m.Src) == 0 {
		t.Chains = []*Chain{chain("trace-output", "output", netip.Addr{})}
		return t
	}
	c := chain("trace-prerouting", "prerouting", m.Src[0])
	for _, a := range m.Src[1:] {
		c.Rules = append(c.Rules, chain("", "", a).Rules...)
	}
	t.Chains = []*Chain{c}
	return t
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
	// The probe's first packet is the first one our marking rule met;
	// a packet that came marked some other way is not the probe's.
	first, found := uint32(0), false
	for _, e := range events {
		if e.Table == TraceTable {
			first, found = e.ID, true
			break
		}
	}
	var out []TraceEvent
	for _, e := range events {
		if found && e.ID == first && e.Table != TraceTable {
			out = append(out, e)
		}
	}
	return out, err
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
