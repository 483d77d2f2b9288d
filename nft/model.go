// Package nft owns every nftables object minidocker-net creates with its
// nftables firewall backend: the tables laid out as Docker 29's
// (docker-bridges, docker-dns) under names of ours, generated from the
// firewall's intent as data (pure functions), printed in nft's own
// syntax, and applied as one netlink batch per command.
//
// Per-network work hangs off verdict maps keyed by bridge name, and every
// published port is a handful of set and map elements: publishing or
// removing one is an element change, whatever the number already there.
package nft

import (
	"strconv"
	"strings"

	"github.com/google/nftables"
)

// TableName is our table in each family, Docker's docker-bridges with
// our name; DNSTable is the one inside a sandbox, Docker's docker-dns.
const (
	TableName = "minidocker-bridges"
	DNSTable  = "minidocker-dns"
)

// Family is an address family as nft names it.
type Family string

const (
	IPv4 Family = "ip"
	IPv6 Family = "ip6"
)

func (f Family) nft() nftables.TableFamily {
	if f == IPv6 {
		return nftables.TableFamilyIPv6
	}
	return nftables.TableFamilyIPv4
}

// addrType is the family's address type in set declarations.
func (f Family) addrType() string {
	if f == IPv6 {
		return "ipv6_addr"
	}
	return "ipv4_addr"
}

// Table is one of our tables: what the intent calls for, or what the
// kernel holds.
type Table struct {
	Family Family   `json:"family"`
	Name   string   `json:"name"`
	Sets   []*Set   `json:"sets,omitempty"`
	Chains []*Chain `json:"chains,omitempty"`
}

func (t *Table) set(name string) *Set {
	for _, s := range t.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (t *Table) chain(name string) *Chain {
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Set is a named set, or a map when it has Data types (a verdict map when
// Data is "verdict").
type Set struct {
	Name  string   `json:"name"`
	Key   []string `json:"key"` // nft type names: ifname, ipv4_addr, inet_proto, inet_service
	Data  []string `json:"data,omitempty"`
	Elems []Elem   `json:"elems,omitempty"`
	Why   string   `json:"-"`
}

// Elem is one element: its key and, in a map, its value, as nft writes
// them ("172.18.0.2 . tcp . 80", "jump filter-forward-in__mdn0").
type Elem struct {
	Key  string `json:"k"`
	Data string `json:"d,omitempty"`
	Why  string `json:"-"`
}

func (e Elem) String() string {
	if e.Data == "" {
		return e.Key
	}
	return e.Key + " : " + e.Data
}

func (s *Set) isMap() bool     { return len(s.Data) > 0 }
func (s *Set) verdicts() bool  { return len(s.Data) == 1 && s.Data[0] == "verdict" }
func (s *Set) keyword() string { return map[bool]string{true: "map", false: "set"}[s.isMap()] }

// Decl is the set's declaration as nft writes it.
func (s *Set) Decl() string { return "{ type " + s.Type() + "; }" }

// Type is the set's type as nft lists it ("ifname : verdict").
func (s *Set) Type() string {
	t := strings.Join(s.Key, " . ")
	if s.isMap() {
		t += " : " + strings.Join(s.Data, " . ")
	}
	return t
}

// Base makes a chain a base chain: attached to a hook.
type Base struct {
	Type     string `json:"type"` // filter, nat
	Hook     string `json:"hook"` // prerouting, forward, output, postrouting
	Priority int    `json:"priority"`
	Policy   string `json:"policy,omitempty"` // accept (default), drop
}

// priorities are the names nft gives standard priorities, where it
// takes them (not dstnat at the output hook).
var priorities = map[string]string{"prerouting -300": "raw", "prerouting -100": "dstnat", "forward 0": "filter", "postrouting 100": "srcnat"}

func (b *Base) policy() string {
	if b.Policy == "" {
		return "accept"
	}
	return b.Policy
}

// Decl is the base chain's declaration as nft writes it.
func (b *Base) Decl() string { return "{ " + b.Line() + " }" }

// Line is the base chain's first line as nft lists it.
func (b *Base) Line() string {
	prio, ok := priorities[b.Hook+" "+strconv.Itoa(b.Priority)]
	if !ok {
		prio = strconv.Itoa(b.Priority)
	}
	return "type " + b.Type + " hook " + b.Hook + " priority " + prio + "; policy " + b.policy() + ";"
}

// Chain is a chain and its rules, in order.
type Chain struct {
	Name  string `json:"name"`
	Base  *Base  `json:"base,omitempty"`
	Rules []Rule `json:"rules,omitempty"`
}

func (c *Chain) sameAs(o *Chain, f Family) bool {
	if c.Name != o.Name || (c.Base == nil) != (o.Base == nil) || len(c.Rules) != len(o.Rules) {
		return false
	}
	if c.Base != nil && c.Base.Decl() != o.Base.Decl() {
		return false
	}
	for i := range c.Rules {
		if c.Rules[i].Text(f) != o.Rules[i].Text(f) {
			return false
		}
	}
	return true
}

// Match is one condition of a rule.
type Match struct {
	// Key: iifname, oifname (Val a name, or a prefix ending in *); saddr,
	// daddr (Val an address or prefix); fib-saddr, fib-daddr (address type
	// local); ct (state established,related); tcp-dport, udp-dport,
	// tcp-sport, udp-sport (Val a port); set (Fields looked up in set Val).
	Key    string   `json:"k"`
	Neg    bool     `json:"n,omitempty"`
	Val    string   `json:"v,omitempty"`
	Fields []string `json:"f,omitempty"` // saddr, daddr, l4proto, dport
}

// Verdict is what a rule does.
type Verdict struct {
	// Kind: accept, drop, jump (Arg a chain), vmap (Fields[0] iifname or
	// oifname, Arg the map), masquerade, dnat-map (Fields looked up in map
	// Arg), dnat (Arg ADDR:PORT), snat (Arg :PORT).
	Kind   string   `json:"k"`
	Arg    string   `json:"a,omitempty"`
	Fields []string `json:"f,omitempty"`
}

// Rule is one rule: its conditions, verdict, and the comment nft shows
// (Docker's words where Docker has one).
type Rule struct {
	Match   []Match `json:"m,omitempty"`
	Verdict Verdict `json:"v"`
	Comment string  `json:"c,omitempty"`
	Why     string  `json:"-"`
}

// fieldText is a lookup field as nft writes it.
func fieldText(f Family, field string) string {
	switch field {
	case "saddr", "daddr":
		return string(f) + " " + field
	case "l4proto":
		return "meta l4proto"
	case "dport", "sport":
		return "th " + field
	}
	return field
}

func fieldsText(f Family, fields []string) string {
	out := make([]string, len(fields))
	for i, x := range fields {
		out[i] = fieldText(f, x)
	}
	return strings.Join(out, " . ")
}

func (m Match) text(f Family) string {
	op := " "
	if m.Neg {
		op = " != "
	}
	switch m.Key {
	case "iifname", "oifname":
		return m.Key + op + strconv.Quote(m.Val)
	case "saddr", "daddr":
		return string(f) + " " + m.Key + op + m.Val
	case "fib-saddr", "fib-daddr":
		return "fib " + strings.TrimPrefix(m.Key, "fib-") + " type" + op + "local"
	case "ct":
		return "ct state" + op + "established,related"
	case "tcp-dport", "udp-dport", "tcp-sport", "udp-sport":
		proto, port, _ := strings.Cut(m.Key, "-")
		return proto + " " + port + op + m.Val
	case "set":
		return fieldsText(f, m.Fields) + op + "@" + m.Val
	case "l4proto":
		return "meta l4proto" + op + m.Val
	}
	return "?" + m.Key
}

func (v Verdict) text(f Family) string {
	switch v.Kind {
	case "jump":
		return "jump " + v.Arg
	case "vmap":
		return v.Fields[0] + " vmap @" + v.Arg
	case "dnat-map":
		return "dnat " + string(f) + " to " + fieldsText(f, v.Fields) + " map @" + v.Arg
	case "dnat", "snat":
		return v.Kind + " " + string(f) + " to " + v.Arg
	case "nftrace":
		return "meta nftrace set 1"
	}
	return v.Kind
}

// Text is the rule as nft lists it, in a table of family f.
func (r Rule) Text(f Family) string {
	parts := make([]string, 0, len(r.Match)+2)
	for _, m := range r.Match {
		parts = append(parts, m.text(f))
	}
	parts = append(parts, r.Verdict.text(f))
	if r.Comment != "" {
		parts = append(parts, "comment "+strconv.Quote(r.Comment))
	}
	return strings.Join(parts, " ")
}
