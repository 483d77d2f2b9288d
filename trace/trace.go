// Package trace explains, hop by hop, whether a packet from a sandbox, the
// host or an outside address would reach a destination: name resolution,
// routing (asked of the kernel), bridging or forwarding, every iptables rule
// it meets (read from the kernel), DNAT and masquerading, and the verdict.
package trace

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/store"
)

// Target is what to trace to: TO[:PORT[/PROTO]].
type Target struct {
	Name  string
	Port  int
	Proto string // icmp without a port, tcp by default with one
	IPv6  bool   // an IPv6 packet (trace -6, or TO an IPv6 address)
}

// ParseTarget reads TO[:PORT[/PROTO]]; an IPv6 address is written bare
// without a port, in brackets with one ([2001:db8::2]:80).
func ParseTarget(s string) (Target, error) {
	t := Target{Proto: "icmp"}
	body := s
	if i := strings.LastIndex(s, "/"); i >= 0 {
		body, t.Proto = s[:i], s[i+1:]
		if t.Proto != "tcp" && t.Proto != "udp" {
			return t, fmt.Errorf("invalid destination %q: protocol must be tcp or udp", s)
		}
	}
	name, port, hasPort := strings.Cut(body, ":")
	if inner, rest, ok := strings.Cut(strings.TrimPrefix(body, "["), "]"); strings.HasPrefix(body, "[") && ok {
		name, port, hasPort = inner, strings.TrimPrefix(rest, ":"), rest != ""
	} else if strings.Count(body, ":") > 1 {
		name, port, hasPort = body, "", false
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is6() {
		t.IPv6 = true
	}
	t.Name = name
	if hasPort {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return t, fmt.Errorf("invalid destination %q: port must be 1-65535", s)
		}
		t.Port = p
		if t.Proto == "icmp" {
			t.Proto = "tcp"
		}
	} else if t.Proto != "icmp" {
		return t, fmt.Errorf("invalid destination %q: %s needs a port", s, t.Proto)
	}
	if t.Name == "" {
		return t, fmt.Errorf("invalid destination %q", s)
	}
	return t, nil
}

// Report is the explanation and the verdict.
type Report struct {
	Lines   []string
	Arrives bool
	Verdict string
	// Probe is how a real packet is sent from the source: "" when the
	// source is an outside address, where nothing can be sent from.
	ProbeFrom string
	ProbeAddr string // address (or name) the probe is sent to
	IPv6      bool   // the probe is an IPv6 packet
}

type tracer struct {
	s     *store.State
	fw    firewall.Backend
	want  firewall.Intent
	local map[netip.Addr]bool
	rep   *Report
	n     int
	v6    bool // the packet is IPv6: addresses, routes and rules of IPv6
}

// addr is an endpoint's address in the traced family.
func (t *tracer) addr(ep *store.Endpoint) netip.Addr {
	if t.v6 {
		return ep.IP6
	}
	return ep.IP
}

// family is the traced family's name, for the explanation.
func (t *tracer) family() string {
	if t.v6 {
		return "IPv6"
	}
	return "IPv4"
}

// is says whether an address is of the traced family.
func (t *tracer) is(a netip.Addr) bool { return a.IsValid() && a.Is6() == t.v6 && !a.Is4In6() }

// subnet and gateway are a network's in the traced family.
func (t *tracer) subnet(n *store.Network) netip.Prefix {
	if t.v6 {
		return n.Subnet6
	}
	return n.Subnet
}

func (t *tracer) gateway(n *store.Network) netip.Addr {
	if t.v6 {
		return n.Gateway6
	}
	return n.Gateway
}

// gatewayEndpoint is the endpoint carrying the default route of the
// traced family.
func (t *tracer) gatewayEndpoint(sb *store.Sandbox) *store.Endpoint {
	if t.v6 {
		return model.GatewayEndpoint6(t.s, sb)
	}
	return model.GatewayEndpoint(t.s, sb)
}

func (t *tracer) say(kind, format string, a ...any) {
	t.n++
	t.rep.Lines = append(t.rep.Lines, fmt.Sprintf("%2d. %-7s %s", t.n, kind, fmt.Sprintf(format, a...)))
}

func (t *tracer) note(format string, a ...any) {
	t.rep.Lines = append(t.rep.Lines, "             "+fmt.Sprintf(format, a...))
}

func (t *tracer) done(arrives bool, format string, a ...any) *Report {
	t.rep.Arrives = arrives
	t.rep.Verdict = fmt.Sprintf(format, a...)
	return t.rep
}

// Trace explains the way from `from` (a sandbox, "host" or an address)
// to the target. An IPv6 packet (to.IPv6, an IPv6 address on either
// side, or a sandbox with IPv6 alone) is explained with IPv6's addresses,
// routes and fw6's rules.
func Trace(s *store.State, fw, fw6 firewall.Backend, from string, to Target) (*Report, error) {
	t := &tracer{s: s, fw: fw, want: model.Intent(s), local: map[netip.Addr]bool{}, rep: &Report{}, v6: to.IPv6}
	if a, err := netip.ParseAddr(from); err == nil && a.Is6() {
		t.v6 = true
	}
	for _, name := range []string{from, to.Name} {
		if sb := s.Sandboxes[name]; sb != nil && sb.Mode == store.ModeBridge && len(sb.Endpoints) > 0 && !hasIPv4(sb) {
			t.v6 = true
		}
	}
	fam := netlink.FAMILY_V4
	if t.v6 {
		t.fw, t.want, fam = fw6, model.Intent6(s), netlink.FAMILY_V6
		t.rep.IPv6 = true
	}
	addrs, err := netlink.AddrList(nil, fam)
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			t.local[ip.Unmap()] = true
		}
	}
	proto := to.Proto
	if to.Port > 0 {
		proto += " port " + strconv.Itoa(to.Port)
	}
	line := fmt.Sprintf("trace %s -> %s (%s)", from, to.Name, proto)
	if t.v6 {
		line = fmt.Sprintf("trace %s -> %s (%s over IPv6)", from, to.Name, proto)
	}
	t.rep.Lines = append(t.rep.Lines, line)

	if sb := s.Sandboxes[from]; sb != nil && sb.Mode != store.ModeHost {
		return t.fromSandbox(sb, to)
	}
	if sb := s.Sandboxes[from]; from == "host" || sb != nil {
		if sb != nil {
			t.say("source", "%s runs in the host's network namespace (--net host): it sends as the host", from)
			t.rep.ProbeFrom = from
		} else {
			t.rep.ProbeFrom = "host"
		}
		dst, ok := t.resolveFromHost(to.Name)
		if !ok {
			return nil, fmt.Errorf("unknown destination %q: not a sandbox with an %s address, \"host\" or an %s address", to.Name, t.family(), t.family())
		}
		t.rep.ProbeAddr = dst.String()
		return t.fromHost(dst, to)
	}
	src, err := netip.ParseAddr(from)
	if err != nil || !t.is(src) {
		return nil, fmt.Errorf("unknown source %q: not a sandbox, \"host\" or an %s address", from, t.family())
	}
	return t.fromOutside(src, to)
}

func (t *tracer) isLocal(a netip.Addr) bool { return a.IsLoopback() || t.local[a] }

func hasIPv4(sb *store.Sandbox) bool {
	for _, ep := range sb.Endpoints {
		if ep.IP.IsValid() {
			return true
		}
	}
	return false
}

// resolveFromHost names what the host would send to: the host has no
// names for sandboxes, so a sandbox name means its main address.
func (t *tracer) resolveFromHost(name string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(name); err == nil && t.is(a) {
		return a, true
	}
	if name == "host" || name == "localhost" {
		if t.v6 {
			return netip.IPv6Loopback(), true
		}
		return netip.MustParseAddr("127.0.0.1"), true
	}
	if sb := t.s.Sandboxes[name]; sb != nil {
		ep := t.gatewayEndpoint(sb)
		for _, e := range sb.Endpoints {
			if ep == nil && t.addr(e).IsValid() {
				ep = e
			}
		}
		if ep != nil {
			t.say("name", "the host resolves no sandbox names; using %s's address %s (%s)", name, t.addr(ep), ep.Network)
			return t.addr(ep), true
		}
	}
	return netip.Addr{}, false
}

// hostsLookup finds a name in a sandbox's /etc/hosts, as the resolver
// does, an address of the family asked for.
func hostsLookup(text, name string, v6 bool) (netip.Addr, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		for _, n := range f[1:] {
			if strings.EqualFold(n, name) {
				a, err := netip.ParseAddr(f[0])
				if err == nil && a.Is6() == v6 {
					return a, true
				}
			}
		}
	}
	return netip.Addr{}, false
}

func (t *tracer) fromSandbox(sb *store.Sandbox, to Target) (*Report, error) {
	t.rep.ProbeFrom, t.rep.ProbeAddr = sb.Name, to.Name
	var dst netip.Addr
	if a, err := netip.ParseAddr(to.Name); err == nil && t.is(a) {
		dst = a
	} else {
		name := to.Name
		if name == "host" {
			name = "host.docker.internal"
			t.rep.ProbeAddr = name
		}
		a, ok := hostsLookup(model.HostsFile(t.s, sb), name, t.v6)
		switch {
		case ok:
			t.say("name", "%s resolves to %s in %s's /etc/hosts", name, a, sb.Name)
		case model.DNSServed(t.s, sb):
			addrs, known := model.Lookup(t.s, sb, name)
			for _, x := range addrs {
				if t.is(x) && !ok {
					a, ok = x, true
				}
			}
			if !ok {
				t.say("name", "%s asks the embedded DNS at %s for %s: it knows no such name on %s's networks, and forwards the question to the host's nameservers", sb.Name, model.ResolverIP, name, sb.Name)
				if known {
					t.note("%s is known, but has no %s address", name, t.family())
				} else if o := t.s.Sandboxes[name]; o != nil {
					t.note("%s is a sandbox, but it shares no user-defined network with %s", name, sb.Name)
				}
				return t.done(false, "does not arrive: %s does not resolve in %s (unless the host's nameservers know it)", name, sb.Name), nil
			}
			t.say("name", "%s asks the embedded DNS at %s (nat rules in its namespace bring port 53 to the resolver's port %d): %s is %s", sb.Name, model.ResolverIP, model.DNSPort(sb), name, a)
			if len(addrs) > 1 {
				t.note("%s has %d addresses, given in a new order at every query; this trace follows %s", name, len(addrs), a)
			}
		default:
			t.say("name", "%s's /etc/hosts has no entry for %s, and the resolver finds it nowhere else", sb.Name, name)
			if o := t.s.Sandboxes[name]; o != nil {
				t.note("%s is a sandbox, but it shares no user-defined network with %s (the default network gives no names)", name, sb.Name)
			}
			return t.done(false, "does not arrive: %s does not resolve in %s", name, sb.Name), nil
		}
		dst = a
	}
	if dst.IsLoopback() {
		t.say("route", "in %s: %s is on lo, the sandbox's own loopback (not the host's 127.0.0.1)", sb.Name, dst)
		return t.done(true, "arrives: loopback inside %s (if a program there listens)", sb.Name), nil
	}
	if sb.Mode == store.ModeNone {
		t.say("route", "%s has loopback only (--net none): no route to %s", sb.Name, dst)
		return t.done(false, "does not arrive: %s has no network", sb.Name), nil
	}
	for _, ep := range sb.Endpoints {
		if t.addr(ep) == dst {
			return t.done(true, "arrives: %s is %s's own address", dst, sb.Name), nil
		}
	}
	h, err := nsnet.Open(sb.Name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	routes, err := h.RouteGet(dst.AsSlice())
	if err != nil || len(routes) == 0 {
		t.say("route", "in %s: no route to %s (ip -n %s route get %s fails)", sb.Name, dst, sb.Name, dst)
		if gw := t.gatewayEndpoint(sb); gw == nil {
			t.note("%s has no %s default route: none of its networks reaches outside with %s", sb.Name, t.family(), t.family())
		}
		return t.done(false, "does not arrive: no route from %s", sb.Name), nil
	}
	r := routes[0]
	link, err := h.LinkByIndex(r.LinkIndex)
	if err != nil {
		return nil, err
	}
	ifname := link.Attrs().Name
	if ifname == "lo" {
		t.say("route", "in %s: %s is local to the sandbox (ip -n %s route get %s: dev lo)", sb.Name, dst, sb.Name, dst)
		return t.done(true, "arrives: %s is local to %s", dst, sb.Name), nil
	}
	var ep *store.Endpoint
	for _, e := range sb.Endpoints {
		if e.IfName == ifname {
			ep = e
		}
	}
	if ep == nil {
		return nil, fmt.Errorf("%s in %s is not in the records", ifname, sb.Name)
	}
	n := t.s.Networks[ep.Network]
	if lan := driver.Parent(n); lan != "" {
		return t.fromLanPort(sb, n, ifname, dst, r.Gw != nil)
	}
	pkt := firewall.Packet{Src: t.addr(ep), Dst: dst, Proto: to.Proto, DPort: to.Port}
	arp, tables := "ARP", "nf_call_iptables=1 passes it through iptables"
	if t.v6 {
		arp, tables = "neighbour discovery", "nf_call_ip6tables=1 passes it through ip6tables"
	}
	if r.Gw == nil && driver.IsGlobal(n) {
		t.say("route", "in %s: %s is on-link via %s (overlay network %s, %s, MTU %d)", sb.Name, dst, ifname, n.Name, t.subnet(n), n.MTU)
		return t.overlay(n, dst)
	}
	if r.Gw == nil {
		t.say("route", "in %s: %s is on-link via %s (network %s, %s)", sb.Name, dst, ifname, n.Name, t.subnet(n))
		owner := t.ownerOn(n.Name, dst)
		if owner == "" {
			if dst == t.gateway(n) {
				t.say("bridge", "%s is the gateway: the bridge %s itself, i.e. the host", dst, n.Bridge)
				pkt.In = n.Bridge
				return t.hostPath(pkt)
			}
			return t.done(false, "does not arrive: nobody on %s has %s (%s gets no answer)", n.Name, dst, arp), nil
		}
		t.say("bridge", "%s finds %s on bridge %s; the frame is bridged, and the bridge's %s", arp, owner, n.Bridge, tables)
		pkt.In, pkt.Out = n.Bridge, n.Bridge
		if !t.walk(firewall.RawPrerouting, pkt) || !t.walk(firewall.FilterForward, pkt) {
			return t.rep, nil
		}
		return t.done(true, "arrives at %s (%s)", owner, dst), nil
	}
	gw, _ := netip.AddrFromSlice(r.Gw)
	t.say("route", "in %s: %s via %s dev %s (the default route, network %s)", sb.Name, dst, gw.Unmap(), ifname, n.Name)
	t.say("host", "the packet enters the host on %s (network %s)", n.Bridge, n.Name)
	pkt.In = n.Bridge
	return t.hostPath(pkt)
}

func (t *tracer) fromOutside(src netip.Addr, to Target) (*Report, error) {
	dst, ok := t.resolveFromHost(to.Name)
	if !ok {
		return nil, fmt.Errorf("unknown destination %q: an outside machine resolves no sandbox names; give an address", to.Name)
	}
	routes, err := netlink.RouteGet(src.AsSlice())
	if err != nil || len(routes) == 0 {
		return nil, fmt.Errorf("the host has no route to %s, so it cannot say where its packets arrive", src)
	}
	link, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return nil, err
	}
	in := link.Attrs().Name
	if to.Name == "host" {
		fam := netlink.FAMILY_V4
		if t.v6 {
			fam = netlink.FAMILY_V6
		}
		if a, err := netlink.AddrList(link, fam); err == nil && len(a) > 0 {
			dst, _ = netip.AddrFromSlice(a[0].IP)
			dst = dst.Unmap()
		}
	}
	t.say("host", "a packet from %s arrives on %s (the host's route back to %s)", src, in, src)
	return t.hostPath(firewall.Packet{In: in, Src: src, Dst: dst, Proto: to.Proto, DPort: to.Port})
}

// fromHost follows a packet the host itself sends.
func (t *tracer) fromHost(dst netip.Addr, to Target) (*Report, error) {
	pkt := firewall.Packet{Dst: dst, Proto: to.Proto, DPort: to.Port, LocalSrc: true, LocalDst: t.isLocal(dst)}
	if !t.dnat(firewall.NatOutput, &pkt) {
		return t.rep, nil
	}
	if t.isLocal(pkt.Dst) {
		return t.done(true, "arrives: %s is the host's own address", pkt.Dst), nil
	}
	out, ok := t.hostRoute(pkt.Dst)
	if !ok {
		return t.done(false, "does not arrive: the host has no route to %s", pkt.Dst), nil
	}
	if child, n := t.lanChild(out, pkt.Dst); child != "" {
		t.say("lan", "%s is %s, a %s port of %s (network %s)", pkt.Dst, child, n.Driver, out, n.Name)
		return t.done(false, "does not arrive: the host cannot reach its own %s children: the kernel does not hand frames from %s's own stack to its %s ports, and the LAN does not send them back (the README shows the usual shim interface)", n.Driver, out, n.Driver), nil
	}
	pkt.Out = out
	pkt.Src = t.sourceFor(pkt.Dst)
	t.postrouting(pkt)
	return t.deliver(pkt)
}

// lanChild names the sandbox with an address on a macvlan or ipvlan
// network whose parent is link.
func (t *tracer) lanChild(link string, a netip.Addr) (string, *store.Network) {
	for _, n := range t.s.Networks {
		if driver.Parent(n) != link {
			continue
		}
		if owner := t.ownerOn(n.Name, a); owner != "" {
			return owner, n
		}
	}
	return "", nil
}

// fromLanPort follows a packet out of a sandbox's macvlan or ipvlan port:
// it never passes the host's stack or firewall. Siblings on the parent
// are reached inside the kernel in bridge mode (and ipvlan's l2/l3), not
// in private mode, and in vepa only if the switch sends the frame back.
func (t *tracer) fromLanPort(sb *store.Sandbox, n *store.Network, ifname string, dst netip.Addr, viaGateway bool) (*Report, error) {
	parent := driver.Parent(n)
	mode := n.Options[driver.OptMacvlanMode]
	if n.Driver == driver.Ipvlan {
		mode = n.Options[driver.OptIpvlanMode]
	}
	if mode == "" {
		mode = map[string]string{driver.Macvlan: "bridge", driver.Ipvlan: "l2"}[n.Driver]
	}
	t.say("lan", "%s's %s is a %s port of the host's %s (mode %s): the packet goes straight onto the LAN, past the host's own stack and firewall", sb.Name, ifname, n.Driver, parent, mode)
	if viaGateway {
		t.say("route", "in %s: %s via the LAN's gateway %s", sb.Name, dst, t.gateway(n))
		return t.done(true, "leaves through %s towards the gateway %s: from here on it is the LAN's business", parent, t.gateway(n)), nil
	}
	owner := t.ownerOn(n.Name, dst)
	switch {
	case owner != "" && (mode == "private" || mode == "passthru"):
		return t.done(false, "does not arrive: %s is %s, a sibling on %s, and mode %s keeps %s's ports apart", dst, owner, parent, mode, n.Driver), nil
	case owner != "" && mode == "vepa":
		return t.done(false, "does not arrive unless the switch sends it back (mode vepa: siblings talk only through the switch, with 802.1Qbg hairpin)"), nil
	case owner != "":
		return t.done(true, "arrives at %s, a sibling on %s, inside the kernel", owner, parent), nil
	}
	if t.local[dst] {
		return t.done(false, "does not arrive: %s is the host's, and the host cannot be reached from its own %s children (nor reach them)", dst, n.Driver), nil
	}
	return t.done(true, "leaves through %s onto the LAN towards %s: from here on it is the LAN's business", parent, dst), nil
}

// hostPath follows a packet that entered the host on pkt.In.
func (t *tracer) hostPath(pkt firewall.Packet) (*Report, error) {
	pkt.LocalDst = t.isLocal(pkt.Dst)
	if !t.walk(firewall.RawPrerouting, pkt) {
		return t.rep, nil
	}
	if !t.dnat(firewall.NatPrerouting, &pkt) {
		return t.rep, nil
	}
	if t.isLocal(pkt.Dst) {
		t.say("route", "host: %s is the host's own address: delivered locally (INPUT; minidocker-net adds no INPUT rules)", pkt.Dst)
		return t.done(true, "arrives at the host (%s)", pkt.Dst), nil
	}
	out, ok := t.hostRoute(pkt.Dst)
	if !ok {
		return t.done(false, "does not arrive: the host has no route to %s", pkt.Dst), nil
	}
	pkt.Out = out
	if !t.walk(firewall.FilterForward, pkt) {
		return t.rep, nil
	}
	if !t.postrouting(pkt) && t.networkOf(pkt.Out) == "" {
		if n := t.subnetOf(pkt.Src); n != nil {
			// The reply is addressed to the sandbox itself: only a far
			// side that routes the subnet back to this host sends it.
			return t.done(false, "does not arrive as a connection: it leaves %s with the source %s unchanged (network %s does not masquerade), and the far side has no reason to route %s back to this host", pkt.Out, pkt.Src, n.Name, t.subnet(n)), nil
		}
	}
	return t.deliver(pkt)
}

// subnetOf returns the network whose subnet holds an address.
func (t *tracer) subnetOf(a netip.Addr) *store.Network {
	for _, n := range t.s.Networks {
		if t.subnet(n).Contains(a) {
			return n
		}
	}
	return nil
}

func (t *tracer) deliver(pkt firewall.Packet) (*Report, error) {
	for _, n := range t.s.Networks {
		if n.Bridge != pkt.Out {
			continue
		}
		if owner := t.ownerOn(n.Name, pkt.Dst); owner != "" {
			return t.done(true, "arrives at %s (%s)", owner, dstPort(pkt)), nil
		}
		return t.done(false, "does not arrive: nobody on %s has %s", n.Name, pkt.Dst), nil
	}
	return t.done(true, "leaves the host through %s towards %s: from here on it is the outside network's business", pkt.Out, pkt.Dst), nil
}

func dstPort(p firewall.Packet) string {
	if p.DPort > 0 {
		return netip.AddrPortFrom(p.Dst, uint16(p.DPort)).String()
	}
	return p.Dst.String()
}

func (t *tracer) ownerOn(network string, ip netip.Addr) string {
	for _, sb := range t.s.Attached(network) {
		if ep := sb.Endpoint(network); ep != nil && t.addr(ep) == ip {
			return sb.Name + " " + ep.IfName
		}
	}
	return ""
}

func (t *tracer) hostRoute(dst netip.Addr) (string, bool) {
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err != nil || len(routes) == 0 {
		t.say("route", "host: no route to %s", dst)
		return "", false
	}
	link, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "", false
	}
	name := link.Attrs().Name
	via := ""
	if routes[0].Gw != nil {
		via = " via " + routes[0].Gw.String()
	}
	t.say("route", "host: %s%s dev %s%s", dst, via, name, t.networkOf(name))
	return name, true
}

func (t *tracer) sourceFor(dst netip.Addr) netip.Addr {
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err == nil && len(routes) > 0 && routes[0].Src != nil {
		if a, ok := netip.AddrFromSlice(routes[0].Src); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func (t *tracer) networkOf(bridge string) string {
	for _, n := range t.s.Networks {
		if n.Bridge == bridge {
			return " (network " + n.Name + ")"
		}
	}
	return ""
}

func (t *tracer) rule(m firewall.Match) string {
	if m.Why != "" {
		return m.Line + "   # " + m.Why
	}
	return m.Line
}

// at explains a packet at a hook; an error of the backend is said.
func (t *tracer) at(hook firewall.Hook, pkt firewall.Packet) (firewall.Verdict, string, string) {
	v, err := t.fw.Walk(t.want, hook, pkt)
	if err != nil {
		t.note("(the firewall cannot be read: %v)", err)
	}
	table, chain, _ := strings.Cut(v.Where, " ")
	return v, table, chain
}

// walk evaluates a hook; it reports false (and the verdict) on a drop.
func (t *tracer) walk(hook firewall.Hook, pkt firewall.Packet) bool {
	v, table, chain := t.at(hook, pkt)
	for _, u := range v.Unknown {
		t.note("(could not evaluate %q: taken as not matching)", u)
	}
	decisive := !v.Policy && len(v.Path) > 0 && (v.Target == "ACCEPT" || v.Target == "DROP" || v.Target == "REJECT")
	switch {
	case v.Policy && v.Target != "ACCEPT":
		t.say(table, "%s: no rule accepts it; the chain's policy is %s", chain, v.Target)
	case v.Policy:
		t.say(table, "%s: no rule stops it (policy ACCEPT)", chain)
	default:
		t.say(table, "%s:", chain)
	}
	for i, m := range v.Path {
		mark := ""
		if decisive && i == len(v.Path)-1 {
			mark = "   <- " + v.Target
		}
		t.note("%s%s", t.rule(m), mark)
	}
	if v.Target == "DROP" || v.Target == "REJECT" {
		last := "the " + chain + " policy"
		if len(v.Path) > 0 && !v.Policy {
			m := v.Path[len(v.Path)-1]
			last = m.Line
			if m.Why != "" {
				last += " (" + m.Why + ")"
			}
		}
		t.done(false, "does not arrive: %s %s drops it: %s", table, chain, last)
		return false
	}
	return true
}

// dnat applies the nat chain of a hook and rewrites the destination.
func (t *tracer) dnat(hook firewall.Hook, pkt *firewall.Packet) bool {
	v, _, chain := t.at(hook, *pkt)
	if v.Target != "DNAT" {
		if pkt.LocalDst {
			t.say("nat", "%s: %s is a host address, but no published port matches %s", chain, pkt.Dst, strings.TrimSpace(pkt.Proto+" "+portText(pkt.DPort)))
		} else {
			t.say("nat", "%s: no DNAT (%s is not a host address)", chain, pkt.Dst)
		}
		return true
	}
	ip, port, err := t.fw.DNATTarget(v.To, pkt.DPort)
	if err != nil {
		t.say("nat", "%s: %v", chain, err)
		return false
	}
	t.say("nat", "%s: DNAT %s -> %s", chain, dstPort(*pkt), netip.AddrPortFrom(ip, uint16(port)))
	t.note("%s", t.rule(v.Path[len(v.Path)-1]))
	pkt.Dst, pkt.DPort, pkt.DNATed, pkt.LocalDst = ip, port, true, t.isLocal(ip)
	return true
}

func portText(p int) string {
	if p == 0 {
		return ""
	}
	return "port " + strconv.Itoa(p)
}

// postrouting reports whether the source was rewritten.
func (t *tracer) postrouting(pkt firewall.Packet) bool {
	v, _, _ := t.at(firewall.NatPostrouting, pkt)
	switch v.Target {
	case "MASQUERADE":
		t.say("nat", "POSTROUTING: MASQUERADE: the source becomes %s's address", pkt.Out)
		t.note("%s", t.rule(v.Path[len(v.Path)-1]))
		return true
	case "SNAT":
		t.say("nat", "POSTROUTING: SNAT")
		return true
	}
	if pkt.Src.IsValid() {
		t.say("nat", "POSTROUTING: the source stays %s", pkt.Src)
	}
	return false
}

// ProbeCommand is the hidden command that sends one real packet.
const ProbeCommand = "__probe"

// Probe sends one packet to addr (a name or an address), over IPv6 when
// v6, and reports whether something answered from there: a reply, a TCP
// reset or an ICMP port unreachable all prove the packet arrived.
func Probe(proto, addr string, port int, v6 bool) (bool, string) {
	fam := "4"
	if v6 {
		fam = "6"
	}
	switch proto {
	case "icmp":
		return pingOnce(addr, fam)
	case "tcp":
		c, err := net.DialTimeout("tcp"+fam, net.JoinHostPort(addr, strconv.Itoa(port)), timeout)
		if err == nil {
			c.Close()
			return true, "TCP connection established"
		}
		if isRefused(err) {
			return true, "TCP reset: the packet arrived, nothing listens on the port"
		}
		return false, "no answer: " + err.Error()
	case "udp":
		c, err := net.DialTimeout("udp"+fam, net.JoinHostPort(addr, strconv.Itoa(port)), timeout)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		_ = c.SetDeadline(deadline())
		if _, err := c.Write([]byte("minidocker-net probe\n")); err != nil {
			return false, err.Error()
		}
		buf := make([]byte, 512)
		if _, err = c.Read(buf); err == nil {
			return true, "UDP reply received"
		}
		if isRefused(err) {
			return true, "ICMP port unreachable: the packet arrived, nothing listens on the port"
		}
		return false, "no answer within a second (for UDP a silent listener looks the same as a drop)"
	}
	return false, "unknown protocol " + proto
}

// overlay follows a frame on an overlay network: bridged in the network's
// namespace on this host to a local endpoint, or sent by the VXLAN device
// to the host that has the endpoint, as the tunnel's own tables say.
func (t *tracer) overlay(n *store.Network, dst netip.Addr) (*Report, error) {
	ns, vx := driver.OverlayNetns(n), driver.OverlayVxlan(n)
	for _, sb := range t.s.Attached(n.Name) {
		if ep := sb.Endpoint(n.Name); ep != nil && ep.IP == dst && sb.Remote == "" {
			t.say("bridge", "ARP finds %s on bridge %s in the network's namespace %s on this host: the frame is bridged there (no firewall in that namespace)", sb.Name, n.Bridge, ns)
			return t.done(true, "arrives at %s %s (%s)", sb.Name, ep.IfName, dst), nil
		}
	}
	if dst == n.Gateway {
		t.say("bridge", "%s is the overlay's gateway, on bridge %s in namespace %s: it answers, but routes nowhere (traffic leaves the cluster by the gateway bridge)", dst, n.Bridge, ns)
		return t.done(true, "arrives at the gateway address in %s", ns), nil
	}
	remote := ""
	for _, sb := range t.s.Attached(n.Name) {
		if ep := sb.Endpoint(n.Name); ep != nil && ep.IP == dst && sb.Remote != "" {
			remote = sb.Name + " on " + sb.Remote
		}
	}
	peers, err := nsnet.Peers(ns, vx)
	if err != nil {
		return nil, err
	}
	for _, p := range peers {
		if p.IP != dst {
			continue
		}
		t.say("overlay", "the ARP request for %s crosses bridge %s to %s (VNI %d), which answers it from its own neighbour table (ARP proxy): %s is at %s", dst, n.Bridge, vx, n.VNI, dst, p.MAC)
		if !p.VTEP.IsValid() {
			return t.done(false, "does not arrive: %s has no forwarding entry for %s (bridge -n %s fdb show dev %s): the agent has not programmed it", vx, p.MAC, ns, vx), nil
		}
		t.say("overlay", "%s's forwarding entry for %s names the VTEP %s: the frame is wrapped in VXLAN (VNI %d) in UDP to %s:%d, 50 bytes more", vx, p.MAC, p.VTEP, n.VNI, p.VTEP, nsnet.VXLANPort)
		if _, ok := t.hostRoute(p.VTEP); !ok {
			return t.done(false, "does not arrive: this host has no route to the VTEP %s", p.VTEP), nil
		}
		if remote == "" {
			remote = "the endpoint " + dst.String()
		}
		t.say("underlay", "the host at %s takes UDP %d into its own vx device for VNI %d, unwraps the frame and bridges it to %s", p.VTEP, nsnet.VXLANPort, n.VNI, remote)
		return t.done(true, "arrives at %s, across the tunnel", remote), nil
	}
	if remote != "" {
		return t.done(false, "does not arrive: %s is %s, but this host's tunnel does not know it yet (the cluster agent programs it; doctor compares)", dst, remote), nil
	}
	return t.done(false, "does not arrive: nobody on overlay network %s has %s, on any host", n.Name, dst), nil
}
