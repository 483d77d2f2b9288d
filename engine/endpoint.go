package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/ipam"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// gatewayOf is the default route of one family a sandbox has in state s
// (nil: none).
func gatewayOf(s *store.State, sb *store.Sandbox, v6 bool) *nsnet.Gateway {
	ep := model.GatewayEndpoint(s, sb)
	if v6 {
		ep = model.GatewayEndpoint6(s, sb)
	}
	if ep == nil {
		return nil
	}
	n := s.Networks[ep.Network]
	if driver.OnLinkDefault(n) {
		return &nsnet.Gateway{Link: ep.IfName}
	}
	if v6 {
		return &nsnet.Gateway{Via: n.Gateway6, Link: ep.IfName}
	}
	return &nsnet.Gateway{Via: n.Gateway, Link: ep.IfName}
}

// hasIPv6 says whether a sandbox has an IPv6 address: then its loopback
// has ::1, as a Docker container's on an IPv6 network.
func hasIPv6(sb *store.Sandbox) bool {
	for _, ep := range sb.Endpoints {
		if ep.IP6.IsValid() {
			return true
		}
	}
	return false
}

// loopback6 gives a sandbox's loopback ::1.
func loopback6(sb *store.Sandbox) plan.Step { return &nsnet.IPv6On{Netns: sb.Name, Link: "lo"} }

// usedIPs returns the addresses taken on a network, of both families.
func usedIPs(s *store.State, network string) map[netip.Addr]bool {
	used := map[netip.Addr]bool{}
	for _, sb := range s.Sandboxes {
		if ep := sb.Endpoint(network); ep != nil {
			if ep.IP.IsValid() {
				used[ep.IP] = true
			}
			if ep.IP6.IsValid() {
				used[ep.IP6] = true
			}
		}
	}
	return used
}

// newEndpoint allocates an endpoint on a network for a sandbox.
func (t *tx) newEndpoint(sb *store.Sandbox, n *store.Network, ip, ip6 string, aliases []string, prio int) (*store.Endpoint, error) {
	if sb.Endpoint(n.Name) != nil {
		return nil, fmt.Errorf("endpoint with name %s already exists in network %s", sb.Name, n.Name)
	}
	if n.Default && len(aliases) > 0 {
		return nil, errors.New("network-scoped alias is supported only for containers in user defined networks")
	}
	for _, a := range aliases {
		if err := ValidateName("alias", a); err != nil {
			return nil, err
		}
	}
	pool := ipam.Pool{Subnet: n.Subnet, Range: n.IPRange, Gateway: n.Gateway}
	used := usedIPs(t.new, n.Name)
	if driver.IsGlobal(n) {
		if err := t.clusterUsed(n, used); err != nil {
			return nil, err
		}
	}
	ep := &store.Endpoint{ID: NewID(), Network: n.Name, NetworkID: n.ID, Aliases: aliases, GwPriority: prio}
	switch {
	case n.NoIPv4:
		if ip != "" {
			return nil, fmt.Errorf("network %s has no IPv4 (created with --ipv4=false): --ip needs an IPv4 network", n.Name)
		}
	case ip != "":
		if n.Default {
			return nil, errors.New("user specified IP address is supported on user defined networks only")
		}
		if !n.UserSubnet {
			return nil, errors.New("user specified IP address is supported only when connecting to networks with user configured subnets")
		}
		a, err := ipam.ParseAddr("IP address", ip)
		if err != nil {
			return nil, err
		}
		if err := pool.Check(a, used); err != nil {
			return nil, err
		}
		ep.IP, ep.StaticIP = a, true
	default:
		a, err := pool.Next(used)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
		ep.IP = a
	}
	if err := assignIP6(ep, n, ip6, used); err != nil {
		return nil, err
	}
	switch {
	case n.Driver == driver.Ipvlan:
		// An ipvlan port has the parent's MAC: none of its own to record.
	case n.NoIPv4:
		ep.MAC = bridge.MACFor6(ep.IP6)
	default:
		ep.MAC = bridge.MACFor(ep.IP)
	}
	ep.IfName = nextIfName(sb)
	veths := map[string]bool{}
	for _, o := range t.new.Sandboxes {
		for _, e := range o.Endpoints {
			veths[e.HostVeth] = true
		}
	}
	ep.HostVeth = vethName(ep.ID, func(v string) bool { return veths[v] || t.e.kernel.LinkExists(v) })
	return ep, nil
}

// assignIP6 gives an endpoint on an IPv6 network its IPv6 address: the
// one asked for with --ip6 (on a network with an IPv6 --subnet), else the
// lowest free one.
func assignIP6(ep *store.Endpoint, n *store.Network, ip6 string, used map[netip.Addr]bool) error {
	if !n.IPv6 {
		if ip6 != "" {
			return fmt.Errorf("network %s has no IPv6: --ip6 needs a network created with --ipv6", n.Name)
		}
		return nil
	}
	pool := ipam.Pool{Subnet: n.Subnet6, Range: n.IPRange6, Gateway: n.Gateway6}
	if ip6 == "" {
		a, err := pool.Next(used)
		if err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
		ep.IP6 = a
		return nil
	}
	if !n.UserSubnet6 {
		return errors.New("user specified IP address is supported only when connecting to networks with user configured subnets")
	}
	a, err := ipam.ParseAddr6("IPv6 address", ip6)
	if err != nil {
		return err
	}
	if err := pool.Check(a, used); err != nil {
		return err
	}
	ep.IP6 = a
	return nil
}

// nextIfName returns the lowest free ethN inside a sandbox, as Docker does.
func nextIfName(sb *store.Sandbox) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("eth%d", i)
		if !slices.ContainsFunc(sb.Endpoints, func(e *store.Endpoint) bool { return e.IfName == name }) {
			return name
		}
	}
}

// endpointSteps attach a sandbox to a network, its driver's way.
func endpointSteps(sb *store.Sandbox, ep *store.Endpoint, n *store.Network) []plan.Step {
	return driver.Of(n).EndpointSteps(sb, ep, n)
}
