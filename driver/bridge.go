package driver

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

// bridgeDriver is Docker's bridge driver: a Linux bridge holding the gateway,
// a veth pair per sandbox, and the firewall's isolation, NAT and
// published ports.
type bridgeDriver struct{}

func (bridgeDriver) Name() string { return Bridge }

// Docker's bridge option names and the short forms we also accept.
const (
	OptBridgeName = "com.docker.network.bridge.name"
	OptICC        = "com.docker.network.bridge.enable_icc"
	OptMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
	OptMTU        = "com.docker.network.driver.mtu"
)

var optAliases = map[string]string{
	OptBridgeName: OptBridgeName, "name": OptBridgeName, "bridge_name": OptBridgeName,
	OptICC: OptICC, "icc": OptICC, "enable_icc": OptICC,
	OptMasquerade: OptMasquerade, "masquerade": OptMasquerade, "ip_masquerade": OptMasquerade, "enable_ip_masquerade": OptMasquerade,
	OptMTU: OptMTU, "mtu": OptMTU,
}

func parseBool(key, v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("invalid value %q for option %s: expected true or false", v, key)
	}
	return b, nil
}

// Configure reads Docker's bridge options; unknown ones are errors rather
// than silently ignored.
func (bridgeDriver) Configure(n *store.Network, opts []string) error {
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" {
			return fmt.Errorf("invalid option %q: expected KEY=VALUE", o)
		}
		full, ok := optAliases[k]
		if !ok {
			return fmt.Errorf("unknown option %q: supported are %s, %s, %s, %s (or name, icc, masquerade, mtu)", k, OptBridgeName, OptICC, OptMasquerade, OptMTU)
		}
		var err error
		switch full {
		case OptBridgeName:
			if err := ValidateBridgeName(v); err != nil {
				return err
			}
			n.Bridge = v
		case OptICC:
			if n.ICC, err = parseBool(full, v); err != nil {
				return err
			}
			v = strconv.FormatBool(n.ICC)
		case OptMasquerade:
			if n.Masquerade, err = parseBool(full, v); err != nil {
				return err
			}
			v = strconv.FormatBool(n.Masquerade)
		case OptMTU:
			mtu, err := strconv.Atoi(v)
			if err != nil || mtu < 68 || mtu > 65535 {
				return fmt.Errorf("invalid value %q for option %s: an MTU between 68 and 65535", v, full)
			}
			n.MTU = mtu
		}
		if n.Options == nil {
			n.Options = map[string]string{}
		}
		n.Options[full] = v
	}
	return nil
}

// Place derives the bridge's name, or checks the one given with -o.
func (bridgeDriver) Place(n *store.Network, h Host) error {
	if n.Bridge == "" {
		n.Bridge = bridgeNameFor(n.Name, n.ID, h.Taken)
		return nil
	}
	if h.Taken(n.Bridge) {
		return fmt.Errorf("bridge name %s is already in use on this host", n.Bridge)
	}
	return nil
}

// NetworkSteps build the bridge with its gateway address; removing the
// network runs them reversed.
func (bridgeDriver) NetworkSteps(n *store.Network) []plan.Step {
	var mac string
	if n.NoIPv4 {
		mac = bridge.MACFor6(n.Gateway6)
	} else {
		mac = bridge.MACFor(n.Gateway)
	}
	steps := []plan.Step{&bridge.Create{Name: n.Bridge, MTU: n.MTU, MAC: mac, Alias: "minidocker-net network " + n.Name}}
	if !n.NoIPv4 {
		steps = append(steps, &bridge.Addr{Link: n.Bridge, CIDR: netip.PrefixFrom(n.Gateway, n.Subnet.Bits())})
	}
	if n.IPv6 {
		// As Docker: IPv6 on for the bridge, router advertisements ignored
		// (CVE-2020-13401), the gateway added without DAD. Beyond Docker, no
		// DAD for the link-local address either (set before the link comes
		// up and makes it): until DAD is done, a second or two, the kernel
		// has no source address for the neighbour solicitations of
		// forwarded packets, and a published port does not answer. The
		// bridge is new (Old is the kernel's default) and goes with the
		// network.
		steps = append(steps,
			&sysctl.Step{Key: "net.ipv6.conf." + n.Bridge + ".accept_ra", Value: "0", Old: "1"},
			&sysctl.Step{Key: "net.ipv6.conf." + n.Bridge + ".accept_dad", Value: "0", Old: "1"},
			&sysctl.Step{Key: "net.ipv6.conf." + n.Bridge + ".disable_ipv6", Value: "0", Old: "1"})
	}
	if !n.Internal && !n.NoIPv4 {
		// Published ports answer on 127.0.0.1: the DNAT target is routed out
		// of this bridge with a loopback source. Only this bridge allows it,
		// and a raw rule drops 127/8 arriving from its sandboxes.
		steps = append(steps, &sysctl.Step{Key: "net.ipv4.conf." + n.Bridge + ".route_localnet", Value: "1", Old: "0"})
	}
	steps = append(steps, &bridge.Up{Link: n.Bridge})
	if n.IPv6 {
		// After up: the kernel drops IPv6 addresses when a link goes down,
		// so undone in reverse the address goes first.
		steps = append(steps, &bridge.Addr{Link: n.Bridge, CIDR: netip.PrefixFrom(n.Gateway6, n.Subnet6.Bits())})
	}
	return steps
}

// HostMAC derives a veth host end's MAC from its endpoint's ID (06: is
// locally administered unicast), so recreating it, in a rollback or a
// restore, gives back the same interface rather than a random new one.
func HostMAC(epID string) string {
	return "06:" + epID[0:2] + ":" + epID[2:4] + ":" + epID[4:6] + ":" + epID[6:8] + ":" + epID[8:10]
}

// EndpointSteps: a veth pair, its sandbox end addressed and up.
func (bridgeDriver) EndpointSteps(sb *store.Sandbox, ep *store.Endpoint, n *store.Network) []plan.Step {
	return addressed(sb, ep, n, &nsnet.Veth{Host: ep.HostVeth, HostMAC: HostMAC(ep.ID), Peer: ep.IfName, Netns: sb.Name, MAC: ep.MAC, MTU: n.MTU, Bridge: n.Bridge,
		Alias: "minidocker-net sandbox " + sb.Name + " " + ep.IfName + " (" + n.Name + ")"})
}

// addressed follows the step that makes a sandbox's interface with its
// IPv4 address, the link up, then on an IPv6 network IPv6 turned on for
// it and its IPv6 address: the kernel drops IPv6 addresses when a link
// goes down, so undone in reverse the address goes first (the printed
// undo, run by hand, finds it).
func addressed(sb *store.Sandbox, ep *store.Endpoint, n *store.Network, link plan.Step) []plan.Step {
	steps := []plan.Step{link}
	if ep.IP.IsValid() {
		steps = append(steps, &nsnet.Addr{Netns: sb.Name, Link: ep.IfName, CIDR: netip.PrefixFrom(ep.IP, n.Subnet.Bits())})
	}
	steps = append(steps, &nsnet.Up{Netns: sb.Name, Link: ep.IfName})
	if ep.IP6.IsValid() {
		steps = append(steps, &nsnet.IPv6On{Netns: sb.Name, Link: ep.IfName},
			&nsnet.Addr{Netns: sb.Name, Link: ep.IfName, CIDR: netip.PrefixFrom(ep.IP6, n.Subnet6.Bits())})
	}
	return steps
}

func (bridgeDriver) Firewall(n *store.Network) (firewall.Network, bool) {
	return firewall.Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal, ICC: n.ICC, Masquerade: n.Masquerade}, true
}

// ifnameRE is what the kernel accepts as an interface name, minus the
// characters that would need quoting.
var ifnameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,14}$`) })

// ValidateBridgeName checks a bridge name given with -o
// com.docker.network.bridge.name. It must carry our prefix so that reset
// can find the bridge even without records.
func ValidateBridgeName(b string) error {
	if !ifnameRE().MatchString(b) {
		return fmt.Errorf("invalid bridge name %q: 1-15 characters of [a-zA-Z0-9_-]", b)
	}
	if !strings.HasPrefix(b, bridge.Prefix) {
		return fmt.Errorf("invalid bridge name %q: it must start with %q so minidocker-net can always find and remove it", b, bridge.Prefix)
	}
	return nil
}

// bridgeNameFor derives a readable bridge name: mdn-NAME when it fits in 15
// characters, else a shortened name plus a piece of the network ID.
func bridgeNameFor(netName, id string, taken func(string) bool) string {
	// Only [a-zA-Z0-9-] reaches an interface name: other separators
	// become '-', other letters go.
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-':
			return r
		case r == '_' || r == '.' || r == ' ':
			return '-'
		}
		return -1
	}, netName)
	for strings.Contains(clean, "--") {
		clean = strings.ReplaceAll(clean, "--", "-")
	}
	clean = strings.Trim(clean, "-")
	if clean == "" {
		return "mdn-" + id[:11]
	}
	cands := []string{"mdn-" + clean}
	for _, k := range []int{4, 6, 8} {
		keep := 15 - len("mdn--") - k
		short := clean
		if len(short) > keep {
			short = strings.TrimRight(short[:keep], "-")
		}
		cands = append(cands, "mdn-"+short+"-"+id[:k])
	}
	cands = append(cands, "mdn-"+id[:11])
	for _, c := range cands {
		if len(c) <= 15 && !taken(c) {
			return c
		}
	}
	return "mdn-" + id[len(id)-11:]
}
