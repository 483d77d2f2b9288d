package store

import (
	"net/netip"
	"sort"
	"time"
)

// Schema is the version written into every state file. Version 1 had no
// driver on networks (they were all bridge networks); it is read and
// migrated.
const Schema = 2

// Network is a network definition. It survives a reboot.
type Network struct {
	Schema     int          `json:"schema"`
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Driver     string       `json:"driver"`
	Created    time.Time    `json:"created"`
	Subnet     netip.Prefix `json:"subnet"`
	Gateway    netip.Addr   `json:"gateway"`
	IPRange    netip.Prefix `json:"ip_range"`
	UserSubnet bool         `json:"user_subnet,omitempty"` // --subnet was given: --ip is allowed
	// ParentCreated: minidocker-net made the parent link of this macvlan
	// or ipvlan network (an 802.1Q link, or a dummy one): it goes with the
	// last network on it.
	ParentCreated bool `json:"parent_created,omitempty"`
	// NoIPv4 (--ipv4=false, with --ipv6): an IPv6-only network, without
	// Subnet, Gateway and IPRange.
	NoIPv4 bool `json:"no_ipv4,omitempty"`
	// IPv6 (--ipv6): the network carries IPv6, from Subnet6.
	IPv6        bool              `json:"ipv6,omitempty"`
	Subnet6     netip.Prefix      `json:"subnet6"`
	Gateway6    netip.Addr        `json:"gateway6"`
	IPRange6    netip.Prefix      `json:"ip_range6"`
	UserSubnet6 bool              `json:"user_subnet6,omitempty"` // an IPv6 --subnet was given: --ip6 is allowed
	Bridge      string            `json:"bridge"`
	MTU         int               `json:"mtu,omitempty"`
	Internal    bool              `json:"internal,omitempty"`
	ICC         bool              `json:"icc"`
	Masquerade  bool              `json:"masquerade"`
	Default     bool              `json:"default,omitempty"` // the pre-defined network "bridge"
	Options     map[string]string `json:"options,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Scope "global": an overlay network, defined in the cluster store; a
	// host keeps a copy while it has endpoints on it. VNI is its VXLAN ID.
	Scope string `json:"scope,omitempty"`
	VNI   int    `json:"vni,omitempty"`
	// GatewayBridge: the bridge network overlay sandboxes leave the
	// cluster by (Docker's docker_gwbridge). Its endpoints have no names.
	GatewayBridge bool `json:"gateway_bridge,omitempty"`
	// Firewall is the firewall backend the host's networks are made with,
	// recorded with each ("": iptables, as before there was a choice).
	Firewall string `json:"firewall,omitempty"`
}

// ScopeGlobal is an overlay network's scope: the cluster's.
const ScopeGlobal = "global"

// Modes a sandbox's network can have.
const (
	ModeBridge = "bridge" // one or more networks
	ModeHost   = "host"
	ModeNone   = "none"
)

// Sandbox is a "container": a named network namespace. It does not survive
// a reboot.
type Sandbox struct {
	Schema    int         `json:"schema"`
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Hostname  string      `json:"hostname"`
	Created   time.Time   `json:"created"`
	Mode      string      `json:"mode"`
	Endpoints []*Endpoint `json:"endpoints,omitempty"`
	Ports     PortList    `json:"ports,omitempty"`
	// PortsFile names the file beside the record that holds its ports,
	// when they are many (PortsFileFrom): read without JSON's scanner.
	PortsFile  string            `json:"ports_file,omitempty"`
	ExtraHosts []HostEntry       `json:"extra_hosts,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        []string          `json:"env,omitempty"`     // run -e: KEY=VALUE added to every program's environment
	Exposed    []string          `json:"exposed,omitempty"` // run --expose: PORT/PROTO, published by -P
	Labels     map[string]string `json:"labels,omitempty"`
	// --dns, --dns-search, --dns-option: the sandbox's own resolver
	// settings (the embedded DNS forwards to these servers).
	DNS        []string `json:"dns,omitempty"`
	DNSSearch  []string `json:"dns_search,omitempty"`
	DNSOptions []string `json:"dns_options,omitempty"`
	Detached   bool     `json:"detached,omitempty"`
	AutoRemove bool     `json:"auto_remove,omitempty"`
	// Pid and PidStart identify the main process (its start time guards
	// against a reused pid). Sandboxes in their own namespace find their
	// processes by namespace instead.
	Pid      int    `json:"pid,omitempty"`
	PidStart uint64 `json:"pid_start,omitempty"`
	// Remote names the host (its hostname and VTEP address) of a sandbox
	// another host of the cluster holds, which views show beside this
	// host's own: never in a record.
	Remote string `json:"-"`
}

// Endpoint is a sandbox's attachment to one network.
type Endpoint struct {
	ID         string     `json:"id"`
	Network    string     `json:"network"`
	NetworkID  string     `json:"network_id"`
	IfName     string     `json:"ifname"`
	IP         netip.Addr `json:"ip"`
	IP6        netip.Addr `json:"ip6"` // on an IPv6 network
	MAC        string     `json:"mac"`
	HostVeth   string     `json:"host_veth"`
	Aliases    []string   `json:"aliases,omitempty"`
	GwPriority int        `json:"gw_priority,omitempty"`
	StaticIP   bool       `json:"static_ip,omitempty"`
}

// Port is one published mapping. HostPortEnd and PortEnd equal HostPort and
// Port for a single port.
type Port struct {
	HostIP      netip.Addr `json:"host_ip"`
	HostPort    int        `json:"host_port"`
	HostPortEnd int        `json:"host_port_end"`
	Port        int        `json:"port"`
	PortEnd     int        `json:"port_end"`
	Proto       string     `json:"proto"`
}

// HostEntry is one --add-host.
type HostEntry struct {
	Name string     `json:"name"`
	IP   netip.Addr `json:"ip"`
}

// Host holds what minidocker-net changed on the host as a whole, so that
// the last network removed can put it back.
type Host struct {
	Schema int `json:"schema"`
	// ForwardingEnabled: net.ipv4.ip_forward was 0 and we set it to 1 (and
	// the FORWARD policy to DROP, as Docker does).
	ForwardingEnabled bool   `json:"forwarding_enabled,omitempty"`
	ForwardPolicyWas  string `json:"forward_policy_was,omitempty"`
	// TablesCreated are the iptables tables that did not exist before our
	// first rule; they are deleted again when empty.
	TablesCreated []string `json:"tables_created,omitempty"`
	// The same for IPv6, once the first IPv6 network came:
	// net.ipv6.conf.all.forwarding, the ip6tables FORWARD policy and tables.
	Forwarding6Enabled bool     `json:"forwarding6_enabled,omitempty"`
	Forward6PolicyWas  string   `json:"forward6_policy_was,omitempty"`
	Tables6Created     []string `json:"tables6_created,omitempty"`
	// LastPort is the ephemeral host port handed out last, per protocol:
	// the next search starts after it, round-robin as Docker's allocator.
	LastPort map[string]int `json:"last_port,omitempty"`
}

// State is everything minidocker-net knows.
type State struct {
	Networks  map[string]*Network
	Sandboxes map[string]*Sandbox
	Host      Host
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Networks: map[string]*Network{}, Sandboxes: map[string]*Sandbox{}, Host: Host{Schema: Schema}}
}

// NetworkNames returns the network names sorted.
func (s *State) NetworkNames() []string {
	names := make([]string, 0, len(s.Networks))
	for n := range s.Networks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SandboxNames returns the sandbox names sorted.
func (s *State) SandboxNames() []string {
	names := make([]string, 0, len(s.Sandboxes))
	for n := range s.Sandboxes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Endpoint returns the sandbox's endpoint on a network, or nil.
func (sb *Sandbox) Endpoint(network string) *Endpoint {
	for _, ep := range sb.Endpoints {
		if ep.Network == network {
			return ep
		}
	}
	return nil
}

// Attached returns the sandboxes with an endpoint on the network, sorted.
func (s *State) Attached(network string) []*Sandbox {
	var out []*Sandbox
	for _, name := range s.SandboxNames() {
		if sb := s.Sandboxes[name]; sb.Endpoint(network) != nil {
			out = append(out, sb)
		}
	}
	return out
}

// Clone returns a deep copy, so a command can build the new state without
// touching the old one.
func (s *State) Clone() *State {
	c := NewState()
	for k, n := range s.Networks {
		nn := *n
		nn.Options = cloneMap(n.Options)
		nn.Labels = cloneMap(n.Labels)
		c.Networks[k] = &nn
	}
	for k, sb := range s.Sandboxes {
		c.Sandboxes[k] = sb.Clone()
	}
	c.Host = s.Host
	c.Host.TablesCreated = append([]string(nil), s.Host.TablesCreated...)
	if s.Host.LastPort != nil {
		c.Host.LastPort = map[string]int{}
		for k, v := range s.Host.LastPort {
			c.Host.LastPort[k] = v
		}
	}
	return c
}

// Clone deep-copies a sandbox.
func (sb *Sandbox) Clone() *Sandbox {
	c := *sb
	c.Endpoints = nil
	for _, ep := range sb.Endpoints {
		e := *ep
		e.Aliases = append([]string(nil), ep.Aliases...)
		c.Endpoints = append(c.Endpoints, &e)
	}
	// Shared, capped: mappings are never changed in place, and an append
	// to the clone's copies (10,000 of them were copied on every command).
	c.Ports = sb.Ports[:len(sb.Ports):len(sb.Ports)]
	c.ExtraHosts = append([]HostEntry(nil), sb.ExtraHosts...)
	c.Cmd = append([]string(nil), sb.Cmd...)
	c.Env = append([]string(nil), sb.Env...)
	c.Exposed = append([]string(nil), sb.Exposed...)
	c.Labels = cloneMap(sb.Labels)
	c.DNS = append([]string(nil), sb.DNS...)
	c.DNSSearch = append([]string(nil), sb.DNSSearch...)
	c.DNSOptions = append([]string(nil), sb.DNSOptions...)
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
