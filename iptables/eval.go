package iptables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/minidocker-net/minidocker-net/firewall"
)

// Packet is the first packet of a connection, as the filter sees it.
type Packet = firewall.Packet

// Match is one rule a packet met.
type Match struct {
	Table, Chain string
	Line         string
	Target       string
}

// Verdict is where a packet ended in a chain walk.
type Verdict struct {
	Target string  // ACCEPT, DROP, REJECT, MASQUERADE, DNAT, SNAT, or the policy
	Policy bool    // the built-in chain's policy decided
	Path   []Match // every rule met on the way, jumps included
	To     string  // the --to-destination of a DNAT
	// Unknown lists rules with matches this evaluator does not model;
	// they were taken as not matching.
	Unknown []string
}

type rule struct {
	line   string
	conds  []cond
	target string
	to     string
	ok     bool // every condition is understood
}

type cond func(Packet) bool

func negate(neg bool, f cond) cond {
	if neg {
		return func(p Packet) bool { return !f(p) }
	}
	return f
}

func ifaceMatch(pattern, name string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "+"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return pattern == name
}

func prefixOf(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen()), err
}

// parseRule reads one iptables-save line into conditions.
func parseRule(line string) rule {
	r := rule{line: line, ok: true}
	f := strings.Fields(line)
	neg := false
	for i := 2; i < len(f); i++ {
		arg := func() string {
			if i+1 < len(f) {
				i++
				return f[i]
			}
			r.ok = false
			return ""
		}
		switch f[i] {
		case "!":
			neg = true
			continue
		case "-s", "-d":
			which := f[i]
			p, err := prefixOf(arg())
			if err != nil {
				r.ok = false
				break
			}
			r.conds = append(r.conds, negate(neg, func(pk Packet) bool {
				if which == "-s" {
					return p.Contains(pk.Src)
				}
				return p.Contains(pk.Dst)
			}))
		case "-i", "-o":
			which := f[i] // read before arg() moves i
			name := arg()
			r.conds = append(r.conds, negate(neg, func(pk Packet) bool {
				if which == "-i" {
					return ifaceMatch(name, pk.In)
				}
				return ifaceMatch(name, pk.Out)
			}))
		case "-p":
			proto := arg()
			r.conds = append(r.conds, negate(neg, func(pk Packet) bool { return pk.Proto == proto }))
		case "-m":
			switch m := arg(); m {
			case "tcp", "udp", "conntrack", "addrtype", "comment":
			default:
				r.ok = false
			}
		case "--dport":
			lo, hi, err := parseRange(arg())
			if err != nil {
				r.ok = false
				break
			}
			r.conds = append(r.conds, negate(neg, func(pk Packet) bool { return pk.DPort >= lo && pk.DPort <= hi }))
		case "--ctstate":
			states := strings.Split(arg(), ",")
			r.conds = append(r.conds, negate(neg, func(pk Packet) bool {
				for _, s := range states {
					if s == "NEW" || s == "DNAT" && pk.DNATed {
						return true
					}
				}
				return false
			}))
		case "--dst-type", "--src-type":
			which := f[i]
			typ := arg()
			if typ != "LOCAL" {
				r.ok = false
				break
			}
			r.conds = append(r.conds, negate(neg, func(pk Packet) bool {
				if which == "--dst-type" {
					return pk.LocalDst
				}
				return pk.LocalSrc
			}))
		case "--comment":
			arg()
		case "-j", "-g":
			r.target = arg()
		case "--to-destination":
			r.to = arg()
		default:
			if strings.HasPrefix(f[i], "--") && r.target != "" {
				arg() // a target option (--to-source, --reject-with, ...)
				break
			}
			r.ok = false
		}
		neg = false
	}
	return r
}

func parseRange(s string) (int, int, error) {
	a, b, isRange := strings.Cut(s, ":")
	lo, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	hi, err := strconv.Atoi(b)
	return lo, hi, err
}

var terminal = map[string]bool{"ACCEPT": true, "DROP": true, "REJECT": true, "MASQUERADE": true, "DNAT": true, "SNAT": true}

// Walk evaluates a packet through a built-in chain of a table, following
// jumps, and returns the verdict with every rule it met.
func (rs *Ruleset) Walk(table, chain string, p Packet) Verdict {
	var v Verdict
	if rs.walk(table, chain, p, &v, 0) {
		return v
	}
	v.Target, v.Policy = rs.Policy(table, chain), true
	return v
}

// walk returns true when a terminal target decided.
func (rs *Ruleset) walk(table, chain string, p Packet, v *Verdict, depth int) bool {
	if depth > 16 {
		return false
	}
	for _, line := range rs.RulesIn(table, chain) {
		r := parseRule(line)
		if !r.ok {
			v.Unknown = append(v.Unknown, line)
			continue
		}
		matched := true
		for _, c := range r.conds {
			if !c(p) {
				matched = false
				break
			}
		}
		if !matched || r.target == "" {
			continue
		}
		v.Path = append(v.Path, Match{Table: table, Chain: chain, Line: line, Target: r.target})
		switch {
		case r.target == "RETURN":
			return false
		case terminal[r.target]:
			v.Target, v.To = r.target, r.to
			return true
		case rs.HasChain(table, r.target):
			if rs.walk(table, r.target, p, v, depth+1) {
				return true
			}
		}
	}
	return false
}

// DNATTarget splits a --to-destination into address and port for a packet
// sent to dport (ranges and shifted ranges included).
func DNATTarget(to string, dport int) (netip.Addr, int, error) {
	host, ports, hasPort := strings.Cut(to, ":")
	switch {
	case strings.HasPrefix(to, "["): // IPv6 with ports: [addr]:port
		inner, rest, _ := strings.Cut(to[1:], "]")
		host, ports, hasPort = inner, strings.TrimPrefix(rest, ":"), rest != ""
	case strings.Count(to, ":") > 1: // IPv6 alone
		host, ports, hasPort = to, "", false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return a, 0, fmt.Errorf("DNAT target %q: %w", to, err)
	}
	if !hasPort {
		return a, dport, nil
	}
	rng, base, shifted := strings.Cut(ports, "/")
	lo, _, err := parseRange(strings.Replace(rng, "-", ":", 1))
	if err != nil {
		return a, 0, fmt.Errorf("DNAT target %q: %w", to, err)
	}
	if shifted {
		b, err := strconv.Atoi(base)
		if err != nil {
			return a, 0, fmt.Errorf("DNAT target %q: %w", to, err)
		}
		return a, lo + dport - b, nil
	}
	return a, lo, nil
}
