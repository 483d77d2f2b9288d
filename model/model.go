// Package model holds the pure derivations of the recorded state that the
// engine, the views and trace share: which endpoint carries a sandbox's
// default route, what its hosts file says, which object a name or ID
// prefix means, and when the default network is needed. Nothing here
// touches the kernel.
package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/store"
)

// Names of the pre-defined networks.
const (
	DefaultNetwork = "bridge"
	DefaultBridge  = "mdn0"
	HostNetwork    = "host"
	NoneNetwork    = "none"
)

// Predefined reports whether a network name is reserved.
func Predefined(name string) bool {
	return name == DefaultNetwork || name == HostNetwork || name == NoneNetwork
}

// GatewayEndpoint returns the endpoint that carries a sandbox's default
// route, chosen as Docker 28 does: highest --gw-priority, then (internal
// networks never provide one) network name ascending.
func GatewayEndpoint(s *store.State, sb *store.Sandbox) *store.Endpoint {
	var best *store.Endpoint
	for _, ep := range sb.Endpoints {
		n := s.Networks[ep.Network]
		if n == nil || n.Internal || !ep.IP.IsValid() || n.Scope == store.ScopeGlobal {
			continue // an IPv6-only endpoint carries no IPv4 route; an overlay's goes by the gateway bridge
		}
		if best == nil || ep.GwPriority > best.GwPriority || ep.GwPriority == best.GwPriority && ep.Network < best.Network {
			best = ep
		}
	}
	return best
}

// EndpointCIDRs are an endpoint's addresses with their prefix lengths,
// IPv4's first, of the families it has.
func EndpointCIDRs(n *store.Network, ep *store.Endpoint) []string {
	var out []string
	if ep.IP.IsValid() {
		out = append(out, fmt.Sprintf("%s/%d", ep.IP, n.Subnet.Bits()))
	}
	if ep.IP6.IsValid() {
		out = append(out, fmt.Sprintf("%s/%d", ep.IP6, n.Subnet6.Bits()))
	}
	return out
}

// Subnets are a network's subnets and gateways, IPv4's first, of the
// families it carries.
func Subnets(n *store.Network) (subnets, gateways []string) {
	if !n.NoIPv4 {
		subnets, gateways = append(subnets, n.Subnet.String()), append(gateways, n.Gateway.String())
	}
	if n.IPv6 {
		subnets, gateways = append(subnets, n.Subnet6.String()), append(gateways, n.Gateway6.String())
	}
	return subnets, gateways
}

// GatewayEndpoint6 is the endpoint that carries a sandbox's IPv6 default
// route: the best of those on IPv6 networks, in GatewayEndpoint's order,
// so that a dual-stack gateway endpoint carries both families (Docker 28
// picks the best dual-stack endpoint for both, else each family's best).
func GatewayEndpoint6(s *store.State, sb *store.Sandbox) *store.Endpoint {
	var best *store.Endpoint
	for _, ep := range sb.Endpoints {
		n := s.Networks[ep.Network]
		if n == nil || n.Internal || !n.IPv6 || !ep.IP6.IsValid() {
			continue
		}
		if best == nil || ep.GwPriority > best.GwPriority || ep.GwPriority == best.GwPriority && ep.Network < best.Network {
			best = ep
		}
	}
	return best
}

// HostGateway is the address a sandbox reaches the host at under the name
// host.docker.internal: the gateway of its default route, else of its
// first network.
func HostGateway(s *store.State, sb *store.Sandbox) netip.Addr {
	if ep := GatewayEndpoint(s, sb); ep != nil {
		return s.Networks[ep.Network].Gateway
	}
	if len(sb.Endpoints) > 0 {
		if n := s.Networks[sb.Endpoints[0].Network]; n != nil {
			return n.Gateway
		}
	}
	return netip.Addr{}
}

// HostGatewayIP is what --add-host NAME:host-gateway maps to, as on
// Docker: the default network's gateway (docker0's 172.17.0.1).
func HostGatewayIP(s *store.State) netip.Addr {
	if n := s.Networks[DefaultNetwork]; n != nil {
		return n.Gateway
	}
	return netip.Addr{}
}

// DefaultNeeded reports whether the default network must exist: while a
// sandbox is on it, or maps a name to host-gateway (whose address is the
// default bridge's). Its bridge and rules come with the first such
// sandbox and go with the last, so a host with none is as it was.
func DefaultNeeded(s *store.State) bool {
	for _, sb := range s.Sandboxes {
		if sb.Endpoint(DefaultNetwork) != nil {
			return true
		}
		if sb.Mode == store.ModeHost {
			continue // the host's own /etc/hosts: its entries are not written
		}
		for _, h := range sb.ExtraHosts {
			if !h.IP.IsValid() {
				return true
			}
		}
	}
	return false
}

// hostNames are the names a sandbox's hosts file answers itself, which no
// sandbox name or alias may shadow: Docker's hosts file answers localhost
// with 127.0.0.1 only.
var hostNames = map[string]bool{
	"localhost": true, "ip6-localhost": true, "ip6-loopback": true, "ip6-localnet": true,
	"ip6-mcastprefix": true, "ip6-allnodes": true, "ip6-allrouters": true, "host.docker.internal": true,
}

// Shadows reports whether a name would shadow one the hosts file already
// answers.
func Shadows(name string) bool { return hostNames[strings.ToLower(name)] }

func keepNames(names []string) []string {
	return slices.DeleteFunc(names, Shadows)
}

// HostsFile renders a sandbox's /etc/hosts from a state: what Docker
// puts there (the defaults, --add-host, host.docker.internal, the
// sandbox's own addresses); its neighbours' names are the embedded DNS's.
func HostsFile(s *store.State, sb *store.Sandbox) string {
	gw := HostGateway(s, sb)
	var extra []etcfiles.Entry
	for _, h := range sb.ExtraHosts {
		ip := h.IP
		if !ip.IsValid() {
			ip = HostGatewayIP(s)
		}
		if ip.IsValid() {
			extra = append(extra, etcfiles.Entry{IP: ip, Names: []string{h.Name}})
		}
	}
	var self []etcfiles.Entry
	for _, ep := range sb.Endpoints {
		names := []string{sb.Hostname}
		// A fully qualified hostname also answers its first label, as
		// Docker writes "a.example.com a".
		if short, _, ok := strings.Cut(sb.Hostname, "."); ok {
			names = append(names, short)
		}
		for _, n := range append([]string{sb.Name}, ep.Aliases...) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		if names = keepNames(names); len(names) > 0 {
			if ep.IP.IsValid() {
				self = append(self, etcfiles.Entry{IP: ep.IP, Names: names})
			}
			if ep.IP6.IsValid() {
				self = append(self, etcfiles.Entry{IP: ep.IP6, Names: names})
			}
		}
	}
	return etcfiles.Hosts(extra, gw, self)
}

// NotFoundError is a missing network or sandbox, in Docker's words.
type NotFoundError struct{ Kind, Name string }

func (e *NotFoundError) Error() string {
	if e.Kind == "network" {
		return "network " + e.Name + " not found"
	}
	return "No such sandbox: " + e.Name
}

// AmbiguousError is an ID prefix that more than one object has.
type AmbiguousError struct {
	Kind, Ref string
	Matches   int
}

func (e *AmbiguousError) Error() string {
	if e.Kind == "network" {
		return fmt.Sprintf("network %s is ambiguous (%d matches found based on ID prefix)", e.Ref, e.Matches)
	}
	return fmt.Sprintf("multiple IDs found with provided prefix: %s", e.Ref)
}

// find resolves a reference as Docker does: a full ID, then a name, then
// a unique prefix of an ID.
func find[T any](kind, ref string, byName map[string]T, id func(T) string) (T, error) {
	var zero T
	if ref == "" {
		return zero, &NotFoundError{Kind: kind, Name: ref}
	}
	for _, v := range byName {
		if id(v) == ref {
			return v, nil
		}
	}
	if v, ok := byName[ref]; ok {
		return v, nil
	}
	var hit T
	n := 0
	if isHex(ref) {
		for _, v := range byName {
			if strings.HasPrefix(id(v), ref) {
				hit = v
				n++
			}
		}
	}
	switch n {
	case 0:
		return zero, &NotFoundError{Kind: kind, Name: ref}
	case 1:
		return hit, nil
	}
	return zero, &AmbiguousError{Kind: kind, Ref: ref, Matches: n}
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// FindSandbox resolves a sandbox name, ID or unique ID prefix.
func FindSandbox(s *store.State, ref string) (*store.Sandbox, error) {
	return find("sandbox", ref, s.Sandboxes, func(sb *store.Sandbox) string { return sb.ID })
}

// BuiltinID is the stable ID of a pre-defined network: the default
// network keeps it from one first sandbox to the next.
func BuiltinID(name string) string {
	sum := sha256.Sum256([]byte("minidocker-net " + name))
	return hex.EncodeToString(sum[:])
}

// NetworkName resolves a network name, ID or unique ID prefix to the
// network's name. The pre-defined networks are found by name and ID even
// while they have no record (the default network has one only while it is
// in use).
func NetworkName(s *store.State, ref string) (string, error) {
	ids := map[string]string{}
	for name, n := range s.Networks {
		ids[name] = n.ID
	}
	for _, p := range []string{DefaultNetwork, HostNetwork, NoneNetwork} {
		if _, ok := ids[p]; !ok {
			ids[p] = BuiltinID(p)
		}
	}
	names := map[string]string{}
	for name := range ids {
		names[name] = name
	}
	return find("network", ref, names, func(name string) string { return ids[name] })
}

// Binding is one published port as docker port shows it.
type Binding struct {
	Key  string // 80/tcp
	Host string // 0.0.0.0:8000
}

// Bindings returns a sandbox's published ports that are in effect: they
// answer on its gateway endpoint, so a sandbox on internal networks only
// has none.
func Bindings(s *store.State, sb *store.Sandbox) []Binding {
	var out []Binding
	for _, p := range sb.Ports {
		for _, host := range HostAddrs(s, sb, p) {
			for i := 0; i <= p.PortEnd-p.Port; i++ {
				out = append(out, Binding{Key: fmt.Sprintf("%d/%s", p.Port+i, p.Proto), Host: fmt.Sprintf("%s:%d", host, p.HostPort+i)})
			}
		}
	}
	return out
}

// binds4 and binds6 say which families a mapping is bound in: -p PORT
// both (IPv6 when the sandbox has it), an address its own family only.
func binds4(p store.Port) bool { return !p.HostIP.IsValid() || p.HostIP.Is4() }
func binds6(p store.Port) bool { return !p.HostIP.IsValid() || p.HostIP.Is6() }

// HostAddrs are the host addresses a mapping answers on, as Docker
// writes them: 0.0.0.0 and [::] for -p PORT (the second when the sandbox
// has an IPv6 gateway endpoint), the address given otherwise.
func HostAddrs(s *store.State, sb *store.Sandbox, p store.Port) []string {
	var out []string
	if !PortsServed(s, sb) {
		return nil
	}
	if binds4(p) && GatewayEndpoint(s, sb) != nil {
		host := "0.0.0.0"
		if p.HostIP.IsValid() {
			host = p.HostIP.String()
		}
		out = append(out, host)
	}
	if binds6(p) && GatewayEndpoint6(s, sb) != nil {
		host := "::"
		if p.HostIP.IsValid() {
			host = p.HostIP.String()
		}
		out = append(out, "["+host+"]")
	}
	return out
}

// PortMappings returns a sandbox's mappings as the firewall takes them,
// bound to its gateway endpoint (nil when it has none).
func PortMappings(s *store.State, sb *store.Sandbox) []firewall.Port {
	return mappings(s, sb, GatewayEndpoint(s, sb), false)
}

// PortMappings6 are a sandbox's published ports over IPv6: -p PORT (Docker
// binds :: beside 0.0.0.0, with the same host port) and those on an IPv6
// address, onto its IPv6 gateway endpoint's address.
func PortMappings6(s *store.State, sb *store.Sandbox) []firewall.Port {
	return mappings(s, sb, GatewayEndpoint6(s, sb), true)
}

// PortsServed says whether a sandbox's published ports are in effect:
// it has a gateway endpoint, on a network whose driver publishes (a
// bridge; macvlan and ipvlan do not, as Docker's).
func PortsServed(s *store.State, sb *store.Sandbox) bool {
	gw := GatewayEndpoint(s, sb)
	if gw == nil {
		gw = GatewayEndpoint6(s, sb)
	}
	if gw == nil {
		return false
	}
	n := s.Networks[gw.Network]
	_, ok := driver.Of(n).Firewall(n)
	return ok
}

// mappings are the mappings of one family, onto gw's address of it.
func mappings(s *store.State, sb *store.Sandbox, gw *store.Endpoint, v6 bool) []firewall.Port {
	if gw == nil || !PortsServed(s, sb) {
		return nil
	}
	ip, binds := gw.IP, binds4
	if v6 {
		ip, binds = gw.IP6, binds6
	}
	br := s.Networks[gw.Network].Bridge
	out := make([]firewall.Port, 0, len(sb.Ports))
	for _, p := range sb.Ports {
		if !binds(p) {
			continue
		}
		out = append(out, firewall.Port{
			Sandbox: sb.Name, Bridge: br, IP: ip, HostIP: p.HostIP, Proto: p.Proto,
			HostPort: p.HostPort, HostPortEnd: p.HostPortEnd, Port: p.Port, PortEnd: p.PortEnd,
		})
	}
	return out
}

// Intent6 is Intent for IPv6: the IPv6 networks, with their IPv6 subnet
// and gateway, and the ports published over IPv6.
func Intent6(s *store.State) firewall.Intent { return intent6(s, nil) }

func intent6(s *store.State, only map[string]bool) firewall.Intent {
	in := firewall.Intent{ForwardDrop: s.Host.Forwarding6Enabled, PolicyWas: s.Host.Forward6PolicyWas}
	for _, name := range s.NetworkNames() {
		n := s.Networks[name]
		if !n.IPv6 {
			continue
		}
		if fn, ok := driver.Of(n).Firewall(n); ok {
			fn.Subnet, fn.Gateway = n.Subnet6, n.Gateway6
			in.Networks = append(in.Networks, fn)
		}
	}
	for _, name := range s.SandboxNames() {
		if only == nil || only[name] {
			in.Ports = append(in.Ports, PortMappings6(s, s.Sandboxes[name])...)
		}
	}
	return in
}

// Bridged says whether any network needs the host's forwarding and
// firewall (its driver has a firewall part: bridge networks; macvlan and
// ipvlan ones put sandboxes on the LAN without either).
func Bridged(s *store.State) bool {
	for _, n := range s.Networks {
		if _, ok := driver.Of(n).Firewall(n); ok {
			return true
		}
	}
	return false
}

// HasIPv6 says whether any network carries IPv6 through the host's
// forwarding and firewall (a bridge network with --ipv6).
func HasIPv6(s *store.State) bool {
	for _, n := range s.Networks {
		if _, ok := driver.Of(n).Firewall(n); ok && n.IPv6 {
			return true
		}
	}
	return false
}

// Intent is everything the state asks of the firewall, networks by name
// and ports sandbox by sandbox: a pure function of the state, so a
// command's firewall change is the difference of two.
func Intent(s *store.State) firewall.Intent { return intent(s, nil) }

// IntentChange is Intent of two states, with the ports only of the
// sandboxes whose records differ: a backend's change looks at no other
// (firewall.ChangedPorts), and 10,000 mappings unchanged beside one more
// are not built twice per command.
func IntentChange(old, cur *store.State) (from, to firewall.Intent) {
	changed := changedSandboxes(old, cur)
	return intent(old, changed), intent(cur, changed)
}

// IntentChange6 is IntentChange for IPv6.
func IntentChange6(old, cur *store.State) (from, to firewall.Intent) {
	changed := changedSandboxes(old, cur)
	return intent6(old, changed), intent6(cur, changed)
}

func changedSandboxes(old, cur *store.State) map[string]bool {
	changed := map[string]bool{}
	for name, sb := range cur.Sandboxes {
		if o, ok := old.Sandboxes[name]; !ok || !store.SameSandbox(o, sb) {
			changed[name] = true
		}
	}
	for name := range old.Sandboxes {
		if _, ok := cur.Sandboxes[name]; !ok {
			changed[name] = true
		}
	}
	return changed
}

func intent(s *store.State, only map[string]bool) firewall.Intent {
	in := firewall.Intent{ForwardDrop: s.Host.ForwardingEnabled, PolicyWas: s.Host.ForwardPolicyWas}
	for _, name := range s.NetworkNames() {
		n := s.Networks[name]
		if n.NoIPv4 {
			continue
		}
		if fn, ok := driver.Of(n).Firewall(n); ok {
			in.Networks = append(in.Networks, fn)
		}
	}
	for _, name := range s.SandboxNames() {
		if only == nil || only[name] {
			in.Ports = append(in.Ports, PortMappings(s, s.Sandboxes[name])...)
		}
	}
	return in
}
