package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/minidocker-net/minidocker-net/iptables"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/portspec"
	"github.com/minidocker-net/minidocker-net/store"
)

func parseSpecs(raw []string, parse func(string) (portspec.Spec, error)) ([]portspec.Spec, error) {
	var out []portspec.Spec
	for _, r := range raw {
		s, err := parse(r)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func hostIPText(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "0.0.0.0"
	case a.Is6():
		return "[" + a.String() + "]"
	}
	return a.String()
}

// clash reports whether two mappings want the same host port: same
// protocol, overlapping ports, and the same address or either on all.
func clash(a, b store.Port) bool {
	if a.HostPort > b.HostPortEnd || b.HostPort > a.HostPortEnd || a.Proto != b.Proto {
		return false
	}
	// 0.0.0.0 and [::] are different sockets on Docker: the families
	// must meet first.
	if a.HostIP.IsValid() && b.HostIP.IsValid() && a.HostIP.Is4() != b.HostIP.Is4() {
		return false
	}
	all := func(p store.Port) bool { return !p.HostIP.IsValid() || p.HostIP.IsUnspecified() }
	return all(a) || all(b) || a.HostIP == b.HostIP
}

// taken is what host ports the mappings hold: a few new mappings are
// checked against the records themselves, more against an index by
// protocol and port (and the ranges), built once.
type taken struct {
	s      *store.State
	added  []store.Port
	single map[protoPort][]store.Port
	ranges []store.Port
}

type protoPort struct {
	proto string
	port  int
}

// allPorts is the host's mappings, for publishing n more.
func allPorts(s *store.State, n int) *taken {
	t := &taken{s: s}
	if n > 16 {
		t.single = map[protoPort][]store.Port{}
		for _, sb := range s.Sandboxes {
			for _, p := range sb.Ports {
				t.index(p)
			}
		}
	}
	return t
}

func (t *taken) index(p store.Port) {
	if p.HostPortEnd != p.HostPort {
		t.ranges = append(t.ranges, p)
		return
	}
	k := protoPort{p.Proto, p.HostPort}
	t.single[k] = append(t.single[k], p)
}

func (t *taken) add(p store.Port) {
	if t.single != nil {
		t.index(p)
		return
	}
	t.added = append(t.added, p)
}

// clash returns a mapping p cannot be published beside.
func (t *taken) clash(p store.Port) (store.Port, bool) {
	if t.single == nil {
		for _, sb := range t.s.Sandboxes {
			for _, q := range sb.Ports {
				if clash(p, q) {
					return q, true
				}
			}
		}
		for _, q := range t.added {
			if clash(p, q) {
				return q, true
			}
		}
		return store.Port{}, false
	}
	for _, q := range t.ranges {
		if clash(p, q) {
			return q, true
		}
	}
	for port := p.HostPort; port <= p.HostPortEnd; port++ {
		for _, q := range t.single[protoPort{p.Proto, port}] {
			if clash(p, q) {
				return q, true
			}
		}
	}
	return store.Port{}, false
}

// noPortMappings is Docker's words for a sandbox whose gateway network's
// driver publishes nothing (macvlan, ipvlan).
func noPortMappings(s *store.State, sb *store.Sandbox) string {
	gw := model.GatewayEndpoint(s, sb)
	if gw == nil {
		gw = model.GatewayEndpoint6(s, sb)
	}
	return s.Networks[gw.Network].Driver + " driver does not support port mappings"
}

// publishable6 refuses what Docker serves with docker-proxy and the
// kernel cannot do alone: a port on an IPv6 host address for a sandbox
// without IPv6 (Docker's 6-to-4 proxy), and on [::1] (IPv6 has no
// route_localnet: the kernel does not route from ::1 into a bridge).
func publishable6(s *store.State, sb *store.Sandbox, sp portspec.Spec) error {
	if !sp.HostIP.Is6() {
		return nil
	}
	if sp.HostIP.IsLoopback() {
		return fmt.Errorf("cannot publish %s: the kernel does not route from ::1 into a bridge (IPv6 has no route_localnet) and minidocker-net runs no proxy; publish on 127.0.0.1, or on [::] or another IPv6 address", sp)
	}
	if model.GatewayEndpoint6(s, sb) == nil {
		return fmt.Errorf("cannot publish %s: sandbox %s has no IPv6 address (its networks were not created with --ipv6), and minidocker-net runs no 6-to-4 proxy; publish on an IPv4 address, or connect it to an IPv6 network", sp, sb.Name)
	}
	return nil
}

// publish allocates host ports for specs and records them on the sandbox.
// Ports answer on the sandbox's gateway endpoint, as on Docker.
func (t *tx) publish(sb *store.Sandbox, specs []portspec.Spec) error {
	if !model.ExternalAccess(t.new, sb) {
		return fmt.Errorf("cannot publish ports of sandbox %s: it is on no network that reaches the host (internal networks cannot publish)", sb.Name)
	}
	if !model.PortsServed(t.new, sb) {
		return fmt.Errorf("cannot publish ports of sandbox %s: %s (it is on the LAN itself: reach it at its address)", sb.Name, noPortMappings(t.new, sb))
	}
	// The address the mapping goes to, for messages: IPv4's, or on an
	// IPv6-only sandbox IPv6's.
	ctrIP := netip.Addr{}
	if gw := model.GatewayEndpoint(t.new, sb); gw != nil {
		ctrIP = gw.IP
	} else {
		ctrIP = model.GatewayEndpoint6(t.new, sb).IP6
	}
	taken := allPorts(t.new, len(specs))
	for _, sp := range specs {
		if err := publishable6(t.new, sb, sp); err != nil {
			return err
		}
		if sp.HostIP.Is4() && model.GatewayEndpoint(t.new, sb) == nil {
			return fmt.Errorf("cannot publish %s: sandbox %s has no IPv4 address (its networks are IPv6-only); publish on [::] or an IPv6 address", sp, sb.Name)
		}
		p, err := t.allocate(sp, taken, ctrIP)
		if err != nil {
			return err
		}
		taken.add(p)
		sb.Ports = append(sb.Ports, p)
		t.flushPorts([]store.Port{p})
	}
	return nil
}

func (t *tx) allocate(sp portspec.Spec, taken *taken, ctrIP netip.Addr) (store.Port, error) {
	n := sp.Len()
	try := func(lo int) (store.Port, error) {
		p := store.Port{HostIP: sp.HostIP, HostPort: lo, HostPortEnd: lo + n - 1, Port: sp.Port, PortEnd: sp.PortEnd, Proto: sp.Proto}
		if q, ok := taken.clash(p); ok {
			return p, fmt.Errorf("Bind for %s:%d failed: port is already allocated", hostIPText(q.HostIP), max(p.HostPort, q.HostPort))
		}
		for port := p.HostPort; port <= p.HostPortEnd; port++ {
			if err := t.e.kernel.HostHolds(sp.HostIP, sp.Proto, port); err != nil {
				return p, fmt.Errorf("failed to bind host port for %s:%d:%s:%d/%s: %v", hostIPText(sp.HostIP), port, ctrIP, sp.Port+port-p.HostPort, sp.Proto, err)
			}
		}
		return p, nil
	}
	switch {
	case sp.HostPort != 0 && sp.HostPortEnd-sp.HostPort+1 == n:
		return try(sp.HostPort)
	case sp.HostPort != 0:
		// A host range for one container port: the first free one.
		var last error
		for lo := sp.HostPort; lo <= sp.HostPortEnd; lo++ {
			p, err := try(lo)
			if err == nil {
				return p, nil
			}
			last = err
		}
		return store.Port{}, last
	default:
		// Round-robin from the port handed out last, as Docker's
		// allocator: a port just released is not handed out again at once.
		lo, hi := t.e.kernel.EphemeralRange()
		first := t.new.Host.LastPort[sp.Proto] + 1
		if first < lo || first+n-1 > hi {
			first = lo
		}
		for i, start := 0, first; i <= hi-lo; i++ {
			if start+n-1 > hi {
				start = lo
			}
			if p, err := try(start); err == nil {
				if t.new.Host.LastPort == nil {
					t.new.Host.LastPort = map[string]int{}
				}
				t.new.Host.LastPort[sp.Proto] = p.HostPortEnd
				return p, nil
			}
			start++
		}
		return store.Port{}, errors.New("all ports are allocated")
	}
}

// flushPorts plans a conntrack flush of the UDP mappings, so datagrams keep
// reaching the mapping's current owner instead of a stale entry.
func (t *tx) flushPorts(ports []store.Port) {
	for _, p := range ports {
		if p.Proto == "udp" {
			t.post = append(t.post, &iptables.FlushConntrack{Proto: p.Proto, Port: p.HostPort, PortEnd: p.HostPortEnd})
		}
	}
}

// Expose publishes ports of a running sandbox (`expose NAME SPEC...`).
func (e *Engine) Expose(name string, raw []string) ([]store.Port, error) {
	specs, err := parseSpecs(raw, portspec.ParseExpose)
	if err != nil {
		return nil, err
	}
	var added []store.Port
	err = e.mutate("expose "+name+" "+strings.Join(raw, " "), func(t *tx) error {
		sb, err := t.sandbox(name)
		if err != nil {
			return err
		}
		if sb.Mode != store.ModeBridge {
			return fmt.Errorf("cannot publish ports of sandbox %s: it is in %s network mode", sb.Name, sb.Mode)
		}
		before := len(sb.Ports)
		if err := t.publish(sb, specs); err != nil {
			return err
		}
		added = sb.Ports[before:]
		return nil
	})
	return added, err
}

// Unexpose removes published mappings that match the specs.
func (e *Engine) Unexpose(name string, raw []string) error {
	specs, err := parseSpecs(raw, portspec.ParseExpose)
	if err != nil {
		return err
	}
	return e.mutate("unexpose "+name+" "+strings.Join(raw, " "), func(t *tx) error {
		sb, err := t.sandbox(name)
		if err != nil {
			return err
		}
		// The mappings by container port, each matched once; the list is
		// compacted once at the end (10,000 deletions one by one moved
		// the list 10,000 times).
		byPort := map[protoPort][]int{}
		for j, p := range sb.Ports {
			k := protoPort{p.Proto, p.Port}
			byPort[k] = append(byPort[k], j)
		}
		gone := make([]bool, len(sb.Ports))
		for i, sp := range specs {
			j := slices.IndexFunc(byPort[protoPort{sp.Proto, sp.Port}], func(j int) bool {
				p := sb.Ports[j]
				return !gone[j] && p.PortEnd == sp.PortEnd &&
					(sp.HostPort == 0 || p.HostPort == sp.HostPort && p.HostPortEnd == sp.HostPortEnd) &&
					(!sp.HostIP.IsValid() || p.HostIP == sp.HostIP)
			})
			if j < 0 {
				return fmt.Errorf("sandbox %s has no published port matching %s", name, raw[i])
			}
			j = byPort[protoPort{sp.Proto, sp.Port}][j]
			gone[j] = true
			t.flushPorts(sb.Ports[j : j+1])
		}
		kept := sb.Ports[:0:0]
		for j, p := range sb.Ports {
			if !gone[j] {
				kept = append(kept, p)
			}
		}
		sb.Ports = kept
		return nil
	})
}

// OnlyRunning names the one running sandbox that can publish ports, for
// "expose 45678" without a sandbox; with none or several it says which
// there are and what to type.
func (e *Engine) OnlyRunning() (string, error) {
	var running []string
	err := e.View(func(s *store.State) error {
		for _, name := range s.SandboxNames() {
			sb := s.Sandboxes[name]
			if sb.Mode != store.ModeBridge {
				continue
			}
			if ok, err := Running(sb); err != nil {
				return err
			} else if ok {
				running = append(running, name)
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return "", err
	case len(running) == 1:
		return running[0], nil
	case len(running) == 0:
		return "", errors.New("no sandbox is running to publish on: name one, as in 'minidocker-net expose SANDBOX 45678'")
	}
	return "", fmt.Errorf("%d sandboxes are running (%s): name the one to publish on, as in 'minidocker-net expose %s 45678'", len(running), strings.Join(running, ", "), running[0])
}
