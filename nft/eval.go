package nft

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/minidocker-net/minidocker-net/firewall"
)

var hookChains = map[firewall.Hook]string{
	firewall.RawPrerouting:  ChainRaw,
	firewall.NatPrerouting:  ChainPrerouting,
	firewall.NatOutput:      ChainOutput,
	firewall.FilterForward:  ChainForward,
	firewall.NatPostrouting: ChainPostrouting,
}

// Walk explains the first packet of a connection at a hook, through the
// rules, verdict maps and sets the kernel holds in our table: each rule
// met, with what the intent made it for.
func (b *Backend) Walk(want firewall.Intent, hook firewall.Hook, p firewall.Packet) (firewall.Verdict, error) {
	name := hookChains[hook]
	v := firewall.Verdict{Where: "nft " + name, Target: "ACCEPT", Policy: true}
	_, k, err := b.against(want)
	if err != nil || k == nil {
		return v, err
	}
	e := &evaluator{k: k, p: p, v: &v, elems: map[string]map[string]string{}}
	if verdict, done := e.chain(name, 0); done {
		v.Target, v.Policy = verdict, false
		return v, nil
	}
	if c := k.chain(name); c != nil && c.Base != nil {
		v.Target = strings.ToUpper(c.Base.policy())
	}
	return v, nil
}

type evaluator struct {
	k     *Kernel
	p     firewall.Packet
	v     *firewall.Verdict
	elems map[string]map[string]string // set -> key -> data
}

func (e *evaluator) lookup(set, key string) (string, bool) {
	m, ok := e.elems[set]
	if !ok {
		m = map[string]string{}
		if s := e.k.Sets[set]; s != nil {
			for _, el := range s.Elems {
				m[el.Key] = el.Data
			}
		}
		e.elems[set] = m
	}
	d, ok := m[key]
	return d, ok
}

// chain evaluates a chain; done reports a verdict that ends the hook.
func (e *evaluator) chain(name string, depth int) (string, bool) {
	c := e.k.chain(name)
	if c == nil || depth > 16 {
		return "", false
	}
	where := "nft " + name
	for _, kr := range c.Rules {
		r := kr.Rule
		if r == nil {
			e.v.Unknown = append(e.v.Unknown, where+" rule handle "+strconv.FormatUint(kr.Handle, 10))
			continue
		}
		if !e.matches(r) {
			continue
		}
		m := firewall.Match{Where: where, Line: r.Text(e.k.Family), Why: r.Why}
		switch r.Verdict.Kind {
		case "accept", "drop", "masquerade":
			m.Target = strings.ToUpper(r.Verdict.Kind)
			e.v.Path = append(e.v.Path, m)
			return m.Target, true
		case "jump":
			m.Target = r.Verdict.Arg
			e.v.Path = append(e.v.Path, m)
			if t, done := e.chain(r.Verdict.Arg, depth+1); done {
				return t, true
			}
		case "vmap":
			to, ok := e.lookup(r.Verdict.Arg, strconv.Quote(e.field(r.Verdict.Fields[0])))
			chain, isJump := strings.CutPrefix(to, "jump ")
			if !ok || !isJump {
				continue
			}
			m.Target, m.Line = chain, m.Line+"   ("+strconv.Quote(e.field(r.Verdict.Fields[0]))+" : "+to+")"
			e.v.Path = append(e.v.Path, m)
			if t, done := e.chain(chain, depth+1); done {
				return t, true
			}
		case "dnat-map":
			to, ok := e.lookup(r.Verdict.Arg, e.key(r.Verdict.Fields))
			if !ok {
				continue
			}
			addr, port, _ := strings.Cut(to, " . ")
			a, _ := netip.ParseAddr(addr)
			n, _ := strconv.Atoi(port)
			e.v.To = netip.AddrPortFrom(a, uint16(n)).String()
			m.Target, m.Line = "DNAT", m.Line+"   ("+e.key(r.Verdict.Fields)+" : "+to+")"
			e.v.Path = append(e.v.Path, m)
			return "DNAT", true
		case "dnat", "snat":
			e.v.To = r.Verdict.Arg
			m.Target = strings.ToUpper(r.Verdict.Kind)
			e.v.Path = append(e.v.Path, m)
			return m.Target, true
		}
	}
	return "", false
}

// field is a packet's value of a lookup field, as set elements write it.
func (e *evaluator) field(f string) string {
	switch f {
	case "iifname":
		return e.p.In
	case "oifname":
		return e.p.Out
	case "saddr":
		return e.p.Src.String()
	case "daddr":
		return e.p.Dst.String()
	case "l4proto":
		return e.p.Proto
	case "dport":
		return strconv.Itoa(e.p.DPort)
	}
	return ""
}

func (e *evaluator) key(fields []string) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = e.field(f)
	}
	return strings.Join(parts, " . ")
}

func (e *evaluator) matches(r *Rule) bool {
	for _, m := range r.Match {
		if e.match(m) == m.Neg {
			return false
		}
	}
	return true
}

func (e *evaluator) match(m Match) bool {
	p := e.p
	switch m.Key {
	case "iifname", "oifname":
		name := p.In
		if m.Key == "oifname" {
			name = p.Out
		}
		if prefix, ok := strings.CutSuffix(m.Val, "*"); ok {
			return strings.HasPrefix(name, prefix)
		}
		return name == m.Val
	case "saddr", "daddr":
		a := p.Src
		if m.Key == "daddr" {
			a = p.Dst
		}
		pre, err := netip.ParsePrefix(m.Val)
		if err != nil {
			x, err := netip.ParseAddr(m.Val)
			return err == nil && x == a
		}
		return a.IsValid() && pre.Contains(a)
	case "fib-saddr":
		return p.LocalSrc
	case "fib-daddr":
		return p.LocalDst
	case "ct":
		return false // the first packet of a connection
	case "tcp-dport", "udp-dport":
		proto, _, _ := strings.Cut(m.Key, "-")
		return p.Proto == proto && strconv.Itoa(p.DPort) == m.Val
	case "tcp-sport", "udp-sport":
		return false // replies; not what a trace follows
	case "set":
		_, ok := e.lookup(m.Val, e.key(m.Fields))
		return ok
	}
	return false
}
