package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/store"
)

// The key layout, under one prefix of ours. Networks, VNIs and subnets
// stay until the network is removed; hosts and endpoints are under their
// host's lease, so they vanish when the host dies.
const (
	Prefix          = "/minidocker-net/"
	NetworksPrefix  = Prefix + "networks/"  // NAME -> the network's record
	VNIPrefix       = Prefix + "vni/"       // N -> network ID
	SubnetPrefix    = Prefix + "subnets/"   // 10.0.0.0-24 -> network ID
	HostsPrefix     = Prefix + "hosts/"     // HOST ID -> Host
	EndpointsPrefix = Prefix + "endpoints/" // NETWORK ID/IP -> Endpoint
)

// NetworkKey, VNIKey, SubnetKey, HostKey and EndpointKey name one record.
func NetworkKey(name string) string                  { return NetworksPrefix + name }
func VNIKey(vni int) string                          { return VNIPrefix + strconv.Itoa(vni) }
func SubnetKey(p netip.Prefix) string                { return SubnetPrefix + strings.Replace(p.String(), "/", "-", 1) }
func HostKey(id string) string                       { return HostsPrefix + id }
func EndpointsKey(netID string) string               { return EndpointsPrefix + netID + "/" }
func EndpointKey(netID string, ip netip.Addr) string { return EndpointsKey(netID) + ip.String() }

// Host is one host of the cluster, present while its lease lives.
type Host struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"` // its hostname
	Advertise netip.Addr `json:"advertise"`
	Joined    time.Time  `json:"joined"`
}

// Endpoint is one sandbox's endpoint on an overlay network, as every host
// sees it: what the others program into their tunnels and answer names
// with. Its key is its address: writing it is the address's allocation.
type Endpoint struct {
	Host      string     `json:"host"`
	VTEP      netip.Addr `json:"vtep"` // the host's advertise address
	Network   string     `json:"network"`
	NetworkID string     `json:"network_id"`
	ID        string     `json:"id"`
	Sandbox   string     `json:"sandbox"`
	SandboxID string     `json:"sandbox_id"`
	Hostname  string     `json:"hostname"`
	IP        netip.Addr `json:"ip"`
	MAC       string     `json:"mac"`
	Aliases   []string   `json:"aliases,omitempty"`
}

// LeaseTTL is the host lease's, in seconds: a host that dies without
// leaving is gone from every other host's tunnels and names about this
// long after.
const LeaseTTL = 10

// Timeout bounds every request to the store: a command that needs an
// unreachable store fails within it, having changed nothing.
const Timeout = 3 * time.Second

// UnreachableError says the store did not answer.
type UnreachableError struct {
	Store string
	Err   error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("the cluster store %s does not answer (%v): check that etcd runs and that --cluster-store names it; local networks keep working", e.Store, e.Err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// ErrLeaseLost is a claim made under a lease the store no longer has (it
// expired while the host could not reach etcd): the command is planned
// again, with the lease the agent holds by then.
var ErrLeaseLost = errors.New("this host's lease in the cluster store has expired (etcd was unreachable?): the cluster agent is renewing it; run the command again")

// TakenError is a claim that lost: another host took a key first. The
// command is planned again from the store's new contents.
type TakenError struct{ What, Key string }

func (e *TakenError) Error() string {
	return fmt.Sprintf("%s: %s was taken by another host at the same time", e.What, e.Key)
}

// LocalEndpoints are a state's endpoints on overlay networks, as the
// store holds them (host and vtep given: this host's).
func LocalEndpoints(s *store.State, host string, vtep netip.Addr) []Endpoint {
	var out []Endpoint
	for _, name := range s.SandboxNames() {
		sb := s.Sandboxes[name]
		for _, ep := range sb.Endpoints {
			n := s.Networks[ep.Network]
			if n == nil || n.Scope != store.ScopeGlobal {
				continue
			}
			out = append(out, Endpoint{Host: host, VTEP: vtep, Network: n.Name, NetworkID: n.ID, ID: ep.ID, Sandbox: sb.Name, SandboxID: sb.ID,
				Hostname: sb.Hostname, IP: ep.IP, MAC: ep.MAC, Aliases: ep.Aliases})
		}
	}
	return out
}

// SortEndpoints orders endpoints by network, then address.
func SortEndpoints(eps []Endpoint) {
	sort.Slice(eps, func(i, j int) bool {
		if eps[i].Network != eps[j].Network {
			return eps[i].Network < eps[j].Network
		}
		return eps[i].IP.Less(eps[j].IP)
	})
}

// RemoteSandbox is another host's endpoint as a sandbox of a view (or of
// the embedded DNS's names): its name, IDs, hostname and the one endpoint.
func RemoteSandbox(e Endpoint, hostName string) *store.Sandbox {
	return &store.Sandbox{ID: e.SandboxID, Name: e.Sandbox, Hostname: e.Hostname, Mode: store.ModeBridge,
		Remote:    hostName + " (" + e.VTEP.String() + ")",
		Endpoints: []*store.Endpoint{{ID: e.ID, Network: e.Network, NetworkID: e.NetworkID, IP: e.IP, MAC: e.MAC, Aliases: e.Aliases}}}
}

// ParseSubnetKey reads a subnet key's prefix.
func ParseSubnetKey(k string) (netip.Prefix, error) {
	return netip.ParsePrefix(strings.Replace(strings.TrimPrefix(k, SubnetPrefix), "-", "/", 1))
}

// ParseVNIKey reads a VNI key's number.
func ParseVNIKey(k string) (int, error) { return strconv.Atoi(strings.TrimPrefix(k, VNIPrefix)) }
