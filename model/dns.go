package model

import (
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"

	"github.com/minidocker-net/minidocker-net/store"
)

// ResolverIP is where the embedded DNS answers inside a sandbox, as
// Docker's.
var ResolverIP = netip.MustParseAddr("127.0.0.11")

// DNSServed reports whether the embedded DNS serves a sandbox: it has an
// endpoint on a user-defined network (the default network gives no names,
// and host and none have no resolver), as on Docker.
func DNSServed(s *store.State, sb *store.Sandbox) bool {
	if sb.Mode != store.ModeBridge {
		return false
	}
	for _, ep := range sb.Endpoints {
		if named(s.Networks[ep.Network]) {
			return true
		}
	}
	return false
}

// named says whether a network's endpoints have names: user-defined
// networks but the gateway bridge of overlay networks, as on Docker.
func named(n *store.Network) bool { return n != nil && !n.Default && !n.GatewayBridge }

// DNSPort is the port the resolver listens on at 127.0.0.11 inside a
// sandbox, UDP and TCP, which the sandbox's nat rules map port 53 to: one
// of the ephemeral range, derived from the sandbox's ID (Docker takes one
// the kernel picks; a derived one lets the plan show it before the
// resolver binds it).
func DNSPort(sb *store.Sandbox) int {
	h := fnv.New32a()
	h.Write([]byte(sb.ID))
	return 32768 + int(h.Sum32()%28000)
}

// dnsNames are the names one endpoint answers to, as Docker's DNSNames:
// the sandbox's name, its aliases on that network, its short ID and its
// hostname.
func dnsNames(sb *store.Sandbox, ep *store.Endpoint) []string {
	names := append([]string{sb.Name}, ep.Aliases...)
	return append(names, sb.ID[:12], sb.Hostname)
}

// Names is the embedded DNS's view of the records, indexed once per
// change so that a query costs a few map lookups whatever the number of
// sandboxes (the resolver answers tens of thousands a second).
type Names struct {
	// forward: per user-defined network, every lower-cased name an
	// endpoint answers to, with the endpoints' addresses.
	forward map[string]map[string][]netip.Addr
	// reverse: per user-defined network, "NAME.NETWORK" of each address.
	reverse map[string]map[netip.Addr]string
}

// NewNames indexes the names of every endpoint on a user-defined network,
// in the records' order (sandboxes by name).
func NewNames(s *store.State) *Names {
	n := &Names{forward: map[string]map[string][]netip.Addr{}, reverse: map[string]map[netip.Addr]string{}}
	for _, sbName := range s.SandboxNames() {
		sb := s.Sandboxes[sbName]
		for _, ep := range sb.Endpoints {
			if !named(s.Networks[ep.Network]) {
				continue
			}
			fw := n.forward[ep.Network]
			if fw == nil {
				fw = map[string][]netip.Addr{}
				n.forward[ep.Network] = fw
				n.reverse[ep.Network] = map[netip.Addr]string{}
			}
			seen := map[string]bool{}
			for _, name := range dnsNames(sb, ep) {
				name = strings.ToLower(name)
				if name == "" || seen[name] {
					continue
				}
				seen[name] = true
				if ep.IP.IsValid() {
					fw[name] = append(fw[name], ep.IP)
				}
				if ep.IP6.IsValid() {
					fw[name] = append(fw[name], ep.IP6)
				}
			}
			for _, a := range []netip.Addr{ep.IP, ep.IP6} {
				if _, taken := n.reverse[ep.Network][a]; !taken && a.IsValid() {
					n.reverse[ep.Network][a] = sb.Name + "." + ep.Network
				}
			}
		}
	}
	return n
}

// Lookup answers a name as the embedded DNS does for the asking sandbox
// (see Names.Lookup), for a one-off question such as trace's.
func Lookup(s *store.State, asker *store.Sandbox, qname string) (addrs []netip.Addr, known bool) {
	return NewNames(s).Lookup(s, asker, qname)
}

// served are the user-defined networks the asker is on, in the order of
// its endpoints.
func servedNetworks(s *store.State, asker *store.Sandbox) []string {
	var nets []string
	for _, ep := range asker.Endpoints {
		if named(s.Networks[ep.Network]) {
			nets = append(nets, ep.Network)
		}
	}
	return nets
}

// Lookup answers a name as the embedded DNS does for the asking sandbox:
// the addresses of every endpoint that answers to it on a user-defined
// network the asker is on ("name.network" looks in that network only).
// known says the name exists there, even with no address to give. The
// addresses are a fresh slice the caller may reorder.
func (n *Names) Lookup(s *store.State, asker *store.Sandbox, qname string) (addrs []netip.Addr, known bool) {
	name := strings.ToLower(strings.TrimSuffix(qname, "."))
	if name == "" {
		return nil, false
	}
	nets := servedNetworks(s, asker)
	for _, nw := range nets {
		if a, ok := n.forward[nw][name]; ok {
			addrs, known = append(addrs, a...), true
		}
	}
	// a.b.c: "a.b" on network "c", then "a" on network "b.c".
	for i := len(name) - 1; !known && i > 0; i-- {
		if name[i] != '.' {
			continue
		}
		for _, nw := range nets {
			if strings.EqualFold(nw, name[i+1:]) {
				if a, ok := n.forward[nw][name[:i]]; ok {
					addrs, known = append(addrs, a...), true
				}
			}
		}
	}
	return addrs, known
}

// Reverse answers a PTR for an address on a user-defined network the
// asker is on: "NAME.NETWORK", the endpoint's first DNS name.
func (n *Names) Reverse(s *store.State, asker *store.Sandbox, a netip.Addr) (string, bool) {
	nets := servedNetworks(s, asker)
	sort.Strings(nets)
	for _, nw := range nets {
		if name, ok := n.reverse[nw][a]; ok {
			return name, true
		}
	}
	return "", false
}

// ExternalAccess reports whether a sandbox reaches beyond its networks
// (it has a default route): only then does the resolver forward names it
// does not know to the host's servers, as Docker's.
func ExternalAccess(s *store.State, sb *store.Sandbox) bool {
	return GatewayEndpoint(s, sb) != nil || GatewayEndpoint6(s, sb) != nil
}
