// Package firewall is the seam between what the state asks of the
// firewall and the programs that build it. The ask is data, an Intent: per
// network, per published port, and the host's forwarding policy; a
// Backend turns a change of intent into plan steps, rebuilds it, removes
// everything it owns, lists it and explains a packet's way through it.
// Two implement it: iptables (and ip6tables), and nftables.
package firewall

import (
	"io"
	"net/netip"
	"strconv"

	"github.com/minidocker-net/minidocker-net/plan"
)

// The backends' names, as --firewall-backend takes them.
const (
	IPTables = "iptables"
	NFTables = "nftables"
)

// Family is an address family, which a backend is made for.
type Family string

const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// Network is what the firewall needs of one network, in one family.
type Network struct {
	Name       string
	Bridge     string
	Subnet     netip.Prefix
	Gateway    netip.Addr
	Internal   bool
	ICC        bool
	Masquerade bool
}

// Port is one published mapping: a host port range onto a container port
// range of the same length, on the bridge of the sandbox's gateway
// endpoint.
type Port struct {
	Sandbox     string
	Bridge      string
	IP          netip.Addr // the sandbox's address behind the mapping
	HostIP      netip.Addr // invalid or unspecified: every host address
	Proto       string     // tcp or udp
	HostPort    int
	HostPortEnd int // == HostPort for a single port
	Port        int
	PortEnd     int
}

// String renders the mapping the way docker port does.
func (p Port) String() string {
	host := "0.0.0.0"
	switch {
	case p.HostIP.Is6():
		host = "[" + p.HostIP.String() + "]"
	case p.HostIP.IsValid() && !p.HostIP.IsUnspecified():
		host = p.HostIP.String()
	case p.IP.Is6():
		host = "[::]" // a mapping bound to every address, over IPv6
	}
	hp := strconv.Itoa(p.HostPort)
	cp := strconv.Itoa(p.Port)
	if p.HostPortEnd != p.HostPort {
		hp += "-" + strconv.Itoa(p.HostPortEnd)
		cp += "-" + strconv.Itoa(p.PortEnd)
	}
	return cp + "/" + p.Proto + " -> " + host + ":" + hp
}

// Intent is everything the state asks of the firewall: its networks by
// name, its published ports sandbox by sandbox, and whether the host's
// forwarding policy is ours to hold at DROP (ip_forward was off and we
// turned it on, as Docker does), with the policy it had before.
type Intent struct {
	Networks    []Network
	Ports       []Port
	ForwardDrop bool
	PolicyWas   string
}

// Hook is a point on a packet's way through the host.
type Hook int

const (
	RawPrerouting  Hook = iota // before conntrack: drops of direct access
	NatPrerouting              // destination NAT of packets arriving
	NatOutput                  // destination NAT of the host's own packets
	FilterForward              // what crosses the host
	NatPostrouting             // source NAT of packets leaving
)

// Packet is the first packet of a connection, as the firewall sees it.
type Packet struct {
	In, Out  string // interfaces; "" when not known at that hook
	Src, Dst netip.Addr
	Proto    string // icmp, tcp or udp
	DPort    int
	DNATed   bool // conntrack state DNAT: the destination was rewritten
	// LocalSrc and LocalDst say whether an address is the host's own.
	LocalSrc, LocalDst bool
}

// Match is one rule a packet met.
type Match struct {
	Where  string // table and chain, as the backend names them
	Line   string // the rule as the backend's own tool prints it
	Target string
	Why    string // what the intent made it for; "" for a rule not ours
}

// Verdict is where a packet ended at a hook.
type Verdict struct {
	Where  string  // the hook as the backend names it ("filter FORWARD")
	Target string  // ACCEPT, DROP, REJECT, MASQUERADE, DNAT, SNAT, or the policy
	Policy bool    // the hook's default policy decided
	Path   []Match // every rule met on the way, jumps included
	To     string  // the destination of a DNAT
	// Unknown lists rules this explanation does not model; they were
	// taken as not matching.
	Unknown []string
}

// Finding is one difference between the kernel and the intent.
type Finding struct {
	What string // the rule or chain, as the backend's tool writes it
	Why  string // what it is for, or why it is suspect
	// Missing: the intent calls for it and the kernel lacks it; else the
	// kernel has it in our place and no intent asks for it.
	Missing bool
}

// Backend programs the host's firewall. One serves one command: it reads
// what it needs of the kernel once, lazily, and keeps it between commands
// where it can prove it current.
type Backend interface {
	Name() string
	// Setup returns the steps that prepare the host before its first
	// network, what they create (recorded, so that Teardown puts it back),
	// and the host's forwarding policy as it was.
	Setup() (steps []plan.Step, created []string, policy string, err error)
	// Teardown undoes Setup once the last network is gone.
	Teardown(created []string) []plan.Step
	// Change returns the steps that take the firewall from one intent to
	// the other, leaving out what the kernel already has.
	Change(from, to Intent) ([]plan.Step, error)
	// Rebuild returns the repair that makes the kernel hold the intent
	// (nil when it does), after a flush, a firewall reload or a reboot.
	Rebuild(want Intent) (plan.Step, error)
	// Remove returns the steps that delete everything of ours, found by
	// name, and put the forwarding policy back (when policy is set);
	// created, if known, lists what Setup made.
	Remove(policy string, created []string, known bool) ([]plan.Step, error)
	// Check compares the kernel with the intent.
	Check(want Intent) ([]Finding, error)
	// List writes what it owns, each rule annotated with what it is for.
	List(w io.Writer, want Intent, tables []string) error
	// Tables names the parts List can show (iptables' tables).
	Tables() []string
	// Walk explains a packet at a hook, each rule it meets with what the
	// intent made it for.
	Walk(want Intent, hook Hook, p Packet) (Verdict, error)
	// DNATTarget reads a DNAT's destination for a packet sent to dport.
	DNATTarget(to string, dport int) (netip.Addr, int, error)
	// Prestart prepares the plan's firewall work before it runs (iptables
	// starts its iptables-restore early).
	Prestart(ctx *plan.Context, steps []plan.Step)
	// Keep saves what the command learned of the kernel for the next one,
	// or forgets it when nothing of ours is left.
	Keep(ctx *plan.Context, ours bool)
	// ForwardPolicy is the host's current FORWARD policy.
	ForwardPolicy() (string, error)
	// Resolver is the step that wires a sandbox's 127.0.0.11:53 to the
	// embedded DNS's sockets at port inside its namespace.
	Resolver(netns string, ip netip.Addr, port int) plan.Step
}
