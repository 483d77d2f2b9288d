package driver

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// Overlay is Docker's multi-host driver: one L2 segment across hosts,
// carried between them in VXLAN. Its definition lives in the cluster
// store; on each host with an endpoint on it, a namespace of its own
// holds a bridge with the gateway and the VXLAN device (built with the
// first local endpoint, removed with the last, as Docker's overlay does).
const Overlay = "overlay"

// Scope of a network: local (this host's store) or global (the cluster's).
const Global = store.ScopeGlobal

// OverlayMTU is an overlay endpoint's MTU: 1500 less VXLAN's 50 bytes.
const OverlayMTU = 1450

type overlayDriver struct{}

func (overlayDriver) Name() string { return Overlay }

// Configure: the MTU option is the only one; encryption needs IPsec ESP.
func (overlayDriver) Configure(n *store.Network, opts []string) error {
	n.Scope = Global
	n.MTU = OverlayMTU
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if k == "encrypted" {
			return errors.New("the overlay driver's encrypted option (IPsec ESP between hosts) is not supported by minidocker-net: this build's kernels have no ESP")
		}
		if !ok || k == "" {
			return fmt.Errorf("invalid option %q: expected KEY=VALUE", o)
		}
		switch k {
		case OptMTU, "mtu":
			mtu, err := strconv.Atoi(v)
			if err != nil || mtu < 68 || mtu > 65535-50 {
				return fmt.Errorf("invalid value %q for option %s: an MTU between 68 and 65485", v, OptMTU)
			}
			n.MTU = mtu
		default:
			return fmt.Errorf("unknown option %q: the overlay driver supports %s", k, OptMTU)
		}
		if n.Options == nil {
			n.Options = map[string]string{}
		}
		n.Options[OptMTU] = strconv.Itoa(n.MTU)
	}
	return nil
}

// Place names the bridge inside the network's namespace, as Docker's
// ov-VNI-ID (the VNI is known by then: the cluster gave it).
func (overlayDriver) Place(n *store.Network, _ Host) error {
	n.Bridge = fmt.Sprintf("ov-%06x-%s", n.VNI, n.ID[:5])
	return nil
}

// OverlayNetns is the namespace of an overlay network's part on a host.
func OverlayNetns(n *store.Network) string { return "mdnov-" + n.ID[:10] }

// OverlayVxlan is its VXLAN device, as Docker's vx-VNI-ID.
func OverlayVxlan(n *store.Network) string { return fmt.Sprintf("vx-%06x-%s", n.VNI, n.ID[:5]) }

// NetworkSteps build the network's namespace, bridge and tunnel.
func (overlayDriver) NetworkSteps(n *store.Network) []plan.Step {
	ns := OverlayNetns(n)
	return []plan.Step{
		&nsnet.Netns{Name: ns},
		&nsnet.OverlayBridge{Netns: ns, Bridge: n.Bridge, Vxlan: OverlayVxlan(n), VNI: n.VNI, Gateway: netip.PrefixFrom(n.Gateway, n.Subnet.Bits())},
	}
}

// EndpointSteps: a veth from the network's bridge into the sandbox, with
// the tunnel's MTU.
func (overlayDriver) EndpointSteps(sb *store.Sandbox, ep *store.Endpoint, n *store.Network) []plan.Step {
	return addressed(sb, ep, n, &nsnet.OverlayVeth{Netns: OverlayNetns(n), Bridge: n.Bridge, Host: ep.HostVeth, Sandbox: sb.Name, Peer: ep.IfName, MAC: ep.MAC, MTU: n.MTU})
}

// Firewall: none on the host; the network's bridge is in its own
// namespace, and traffic leaving the cluster goes by the gateway bridge.
func (overlayDriver) Firewall(*store.Network) (firewall.Network, bool) {
	return firewall.Network{}, false
}

// IsGlobal says whether a network's definition is the cluster's.
func IsGlobal(n *store.Network) bool { return n != nil && n.Scope == Global }
