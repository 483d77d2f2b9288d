// Package iptables owns every iptables rule minidocker-net creates: it generates
// them from the networks, endpoints and port mappings (pure functions, in the
// exact text iptables-save prints), and applies them in batches.
//
// The layout mirrors Docker 28 with its kernel-only (userland-proxy off)
// port publishing. Every rule lives in a chain whose name starts with
// MINIDOCKER; built-in chains only hold jumps into them, so reset finds all
// of it by prefix and Docker's own chains are never touched.
package iptables

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/minidocker-net/minidocker-net/firewall"
)

// Chain names. DOCKER-USER, DOCKER-FORWARD, ... with our prefix.
const (
	ChainUser        = "MINIDOCKER-USER"
	ChainForward     = "MINIDOCKER-FORWARD"
	ChainCT          = "MINIDOCKER-CT"
	ChainInternal    = "MINIDOCKER-INTERNAL"
	ChainIsolation1  = "MINIDOCKER-ISOLATION-STAGE-1"
	ChainIsolation2  = "MINIDOCKER-ISOLATION-STAGE-2"
	ChainBridge      = "MINIDOCKER-BRIDGE"
	ChainMain        = "MINIDOCKER" // filter: per-bridge drop and published-port accepts; nat: DNAT
	ChainPostrouting = "MINIDOCKER-POSTROUTING"
	ChainPrerouting  = "MINIDOCKER-PREROUTING" // raw
	Prefix           = "MINIDOCKER"
)

// Tables in the order they are applied.
var Tables = []string{"raw", "nat", "filter"}

// Rule is one iptables rule. Spec is everything after "-A CHAIN " exactly as
// iptables-save prints it, so a rule can be found in a saved ruleset by text.
type Rule struct {
	Table string `json:"table"`
	Chain string `json:"chain"`
	Spec  string `json:"spec"`
	// Top rules are inserted at the head of their chain (-I) rather than
	// appended, as Docker does for rules that must win over later ones.
	Top bool `json:"top,omitempty"`
	// Why says what the rule is for; it is not part of the rule.
	Why string `json:"why,omitempty"`
}

// Line is the rule as an iptables-save line.
func (r Rule) Line() string { return "-A " + r.Chain + " " + r.Spec }

// Key identifies the rule regardless of Why and Top.
func (r Rule) Key() string { return r.Table + " " + r.Line() }

// BaseChains are the chains that exist while at least one network exists.
var BaseChains = map[string][]string{
	"raw":    {ChainPrerouting},
	"nat":    {ChainMain, ChainPostrouting},
	"filter": {ChainUser, ChainForward, ChainCT, ChainInternal, ChainIsolation1, ChainIsolation2, ChainBridge, ChainMain},
}

// BaseRules are the jumps from the built-in chains and the fixed skeleton of
// our own chains, in the order they must appear: IPv4's, and with v6
// ip6tables', whose OUTPUT jump leaves ::1 alone (Docker 28's): the
// kernel cannot take ::1 into a bridge, and a connection to [::1]:PORT
// is then refused at once by the host rather than lost.
func BaseRules(v6 bool) []Rule {
	const why = "minidocker-net skeleton"
	output := Rule{Table: "nat", Chain: "OUTPUT", Spec: "-m addrtype --dst-type LOCAL -j " + ChainMain, Why: "published ports: traffic from the host itself, localhost included"}
	if v6 {
		output = Rule{Table: "nat", Chain: "OUTPUT", Spec: "! -d ::1/128 -m addrtype --dst-type LOCAL -j " + ChainMain, Why: "published ports: traffic from the host itself (not ::1, which cannot be routed into a bridge)"}
	}
	return []Rule{
		{Table: "raw", Chain: "PREROUTING", Spec: "-j " + ChainPrerouting, Why: why},

		{Table: "nat", Chain: "PREROUTING", Spec: "-m addrtype --dst-type LOCAL -j " + ChainMain, Why: "published ports: traffic to a local address"},
		// No "! -d 127.0.0.0/8" as Docker has with its proxy: localhost is DNATed in the kernel.
		output,
		{Table: "nat", Chain: "POSTROUTING", Spec: "-j " + ChainPostrouting, Top: true, Why: why},

		// Both Top: the admin's chain ends up first, as DOCKER-USER does.
		{Table: "filter", Chain: "FORWARD", Spec: "-j " + ChainUser, Top: true, Why: "the admin's own rules come first"},
		{Table: "filter", Chain: "FORWARD", Spec: "-j " + ChainForward, Top: true, Why: why},
		{Table: "filter", Chain: ChainForward, Spec: "-j " + ChainCT, Why: "replies to connections already accepted"},
		{Table: "filter", Chain: ChainForward, Spec: "-j " + ChainInternal, Why: "--internal networks reach nothing outside"},
		{Table: "filter", Chain: ChainForward, Spec: "-j " + ChainIsolation1, Why: "no traffic between two networks"},
		{Table: "filter", Chain: ChainForward, Spec: "-j " + ChainBridge, Why: "traffic into a bridge: published ports only"},
		// A DNATed packet was sent to a published port: it may cross networks
		// (the filter MINIDOCKER chain still admits only published ports).
		{Table: "filter", Chain: ChainIsolation1, Spec: "-m conntrack --ctstate DNAT -j RETURN", Why: "published ports are reachable from every network"},
		// Docker's networks are other networks too: without these, our
		// ACCEPT of traffic leaving a network would let it into Docker's
		// bridges, where Docker 20.10 relies on the FORWARD policy.
		{Table: "filter", Chain: ChainIsolation2, Spec: "-o docker0 -j DROP", Why: "isolation from Docker's default network"},
		{Table: "filter", Chain: ChainIsolation2, Spec: "-o br-+ -j DROP", Why: "isolation from Docker's user-defined networks (bridges br-<id>)"},
	}
}

// Network and Port are the firewall's intent, which the rules of this
// package are generated from.
type (
	Network = firewall.Network
	Port    = firewall.Port
)

// host is an address as a one-address prefix, the way iptables-save
// prints it: /32, or /128 for IPv6.
func host(a netip.Addr) string { return a.String() + "/" + strconv.Itoa(a.BitLen()) }

// NetworkRules returns the rules of one network, in order, in its
// subnet's family: ip6tables has the same layout without what only IPv4
// has (route_localnet, so no 127/8 drop).
func NetworkRules(n Network) []Rule {
	b, s := n.Bridge, n.Subnet.String()
	v6 := n.Subnet.Addr().Is6()
	why := func(w string) string { return "network " + n.Name + ": " + w }
	var rs []Rule
	add := func(table, chain, spec, w string) {
		rs = append(rs, Rule{Table: table, Chain: chain, Spec: spec, Why: why(w)})
	}
	if n.Internal && v6 {
		// As Docker's: only what crosses the bridge's edge. Bridged
		// neighbour discovery between sandboxes has link-local sources,
		// which IPv4's subnet match would drop.
		add("filter", ChainInternal, "! -s "+s+" ! -i "+b+" -o "+b+" -j DROP", "internal: nothing enters from outside the subnet")
		add("filter", ChainInternal, "! -d "+s+" -i "+b+" ! -o "+b+" -j DROP", "internal: nothing leaves the subnet")
	} else if n.Internal {
		add("filter", ChainInternal, "! -s "+s+" -o "+b+" -j DROP", "internal: nothing enters from outside the subnet")
		add("filter", ChainInternal, "! -d "+s+" -i "+b+" -j DROP", "internal: nothing leaves the subnet")
	}
	if n.Internal {
		if n.ICC {
			add("filter", ChainForward, "-i "+b+" -o "+b+" -j ACCEPT", "sandboxes on the network talk to each other")
		} else {
			add("filter", ChainForward, "-i "+b+" -o "+b+" -j DROP", "icc=false: sandboxes on the network cannot talk")
		}
	} else {
		if !v6 {
			add("raw", ChainPrerouting, "-d 127.0.0.0/8 -i "+b+" -j DROP", "route_localnet is on for the bridge: no sandbox may reach the host's 127/8 (CVE-2020-8558)")
		}
		// Nobody routes to a sandbox directly, as Docker 28's per-sandbox
		// raw drop, written once per network: the same packets dropped, no
		// rule to change when a sandbox comes or goes, no rule per sandbox
		// for every packet to pass. The gateway is the host's own address.
		add("raw", ChainPrerouting, "-d "+host(n.Gateway)+" -j RETURN", "the gateway is the host's own address: reachable as on Docker")
		add("raw", ChainPrerouting, "-d "+s+" ! -i "+b+" -j DROP", "no direct routing to its sandboxes from off the bridge")
		add("nat", ChainPostrouting, "-o "+b+" -m addrtype --src-type LOCAL -j MASQUERADE", "host to sandbox via localhost or a host address: reply comes back")
		if n.Masquerade {
			add("nat", ChainPostrouting, "-s "+s+" ! -o "+b+" -j MASQUERADE", "sandboxes reach outside as the host")
		}
		if n.ICC {
			add("filter", ChainForward, "-i "+b+" -j ACCEPT", "traffic from the network: to each other and outside")
		} else {
			add("filter", ChainForward, "-i "+b+" -o "+b+" -j DROP", "icc=false: sandboxes on the network cannot talk")
			add("filter", ChainForward, "-i "+b+" ! -o "+b+" -j ACCEPT", "traffic from the network to outside")
		}
		add("filter", ChainMain, "! -i "+b+" -o "+b+" -j DROP", "nothing else enters the network: unpublished ports stay closed")
		add("filter", ChainCT, "-o "+b+" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "replies into the network")
		add("filter", ChainBridge, "-o "+b+" -j "+ChainMain, "traffic into the network: published ports only")
	}
	add("filter", ChainIsolation1, "-i "+b+" ! -o "+b+" -j "+ChainIsolation2, "isolation stage 1: leaving the network")
	add("filter", ChainIsolation2, "-o "+b+" -j DROP", "isolation stage 2: entering another network")
	return rs
}

func portRange(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d:%d", a, b)
}

// PortRules returns the rules of one mapping: DNAT in nat MINIDOCKER, an
// accept in filter MINIDOCKER, a masquerade so a sandbox can reach its own
// published port, and for a loopback host address a raw drop of packets from
// anywhere but lo. One rule of each kind per mapping, ranges included.
// For IPv6 the DNAT target is written [addr]:port, and link-local sources
// are not translated, as Docker's.
func PortRules(p Port) []Rule {
	why := "sandbox " + p.Sandbox + ": " + p.String()
	ctr := p.IP.String()
	match := "-p " + p.Proto + " -m " + p.Proto + " --dport "
	hostMatch := ""
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		hostMatch = "-d " + host(p.HostIP) + " "
	}
	to6 := ctr
	if p.IP.Is6() {
		to6 = "[" + ctr + "]"
		hostMatch = "! -s fe80::/10 " + hostMatch
	}
	var to string
	switch {
	case p.HostPortEnd == p.HostPort:
		to = to6 + ":" + strconv.Itoa(p.Port)
	case p.HostPort == p.Port:
		to = ctr // a range onto the same ports keeps each port
	default:
		to = fmt.Sprintf("%s:%d-%d/%d", to6, p.Port, p.PortEnd, p.HostPort)
	}
	rs := []Rule{
		{Table: "nat", Chain: ChainMain, Spec: hostMatch + match + portRange(p.HostPort, p.HostPortEnd) + " -j DNAT --to-destination " + to, Why: why},
		{Table: "nat", Chain: ChainPostrouting, Spec: "-s " + host(p.IP) + " -d " + host(p.IP) + " " + match + portRange(p.Port, p.PortEnd) + " -j MASQUERADE", Why: why + " (the sandbox reaching its own port)"},
		{Table: "filter", Chain: ChainMain, Spec: "-d " + host(p.IP) + " ! -i " + p.Bridge + " -o " + p.Bridge + " " + match + portRange(p.Port, p.PortEnd) + " -j ACCEPT", Top: true, Why: why},
	}
	if p.HostIP.IsLoopback() {
		rs = append(rs, Rule{Table: "raw", Chain: ChainPrerouting, Spec: hostMatch + "! -i lo " + match + portRange(p.HostPort, p.HostPortEnd) + " -j DROP", Why: why + " (loopback only)"})
	}
	return rs
}
