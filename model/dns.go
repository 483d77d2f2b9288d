package model

import (
	"hash/fnv"
	"net/netip"
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
		if n := s.Networks[ep.Network]; n != nil && !n.Default {
			return true
		}
	}
	return false
}

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

// Lookup answers a name as the embedded DNS does for the asking sandbox:
// the addresses of every endpoint that answers to it on a user-defined
// network the asker is on ("name.network" looks in that network only).
// known says the name exists there, even with no address to give.
func Lookup(s *store.State, asker *store.Sandbox, qname string) (addrs []netip.Addr, known bool) {
	name := strings.ToLower(strings.TrimSuffix(qname, "."))
	if name == "" {
		return nil, false
	}
	mine := map[string]bool{}
	for _, ep := range asker.Endpoints {
		if n := s.Networks[ep.Network]; n != nil && !n.Default {
			mine[ep.Network] = true
		}
	}
	try := func(name string, nets map[string]bool) {
		for _, sbName := range s.SandboxNames() {
			sb := s.Sandboxes[sbName]
			for _, ep := range sb.Endpoints {
				if !nets[ep.Network] {
					continue
				}
				for _, n := range dnsNames(sb, ep) {
					if strings.EqualFold(n, name) {
						addrs = append(addrs, ep.IP)
						known = true
						break
					}
				}
			}
		}
	}
	try(name, mine)
	// a.b.c: "a.b" on network "c", then "a" on network "b.c".
	for i := len(name) - 1; !known && i > 0; i-- {
		if name[i] != '.' {
			continue
		}
		for n := range mine {
			if strings.EqualFold(n, name[i+1:]) {
				try(name[:i], map[string]bool{n: true})
			}
		}
	}
	return addrs, known
}

// ReverseLookup answers a PTR for an address on a user-defined network
// the asker is on: "NAME.NETWORK", the endpoint's first DNS name.
func ReverseLookup(s *store.State, asker *store.Sandbox, a netip.Addr) (string, bool) {
	mine := map[string]bool{}
	for _, ep := range asker.Endpoints {
		if n := s.Networks[ep.Network]; n != nil && !n.Default {
			mine[ep.Network] = true
		}
	}
	for _, sbName := range s.SandboxNames() {
		sb := s.Sandboxes[sbName]
		for _, ep := range sb.Endpoints {
			if mine[ep.Network] && ep.IP == a {
				return sb.Name + "." + ep.Network, true
			}
		}
	}
	return "", false
}

// ExternalAccess reports whether a sandbox reaches beyond its networks
// (it has a default route): only then does the resolver forward names it
// does not know to the host's servers, as Docker's.
func ExternalAccess(s *store.State, sb *store.Sandbox) bool { return GatewayEndpoint(s, sb) != nil }
