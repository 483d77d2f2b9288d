package driver

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/hostlink"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// lanDriver is Docker's macvlan or ipvlan driver: sandboxes straight on a
// host link (the parent), each interface a macvlan (its own MAC) or an
// ipvlan (the parent's MAC) port of it: no bridge, no veth on the host, no
// NAT and no firewall rules, as Docker's drivers write none.
type lanDriver struct{ kind string }

func (d lanDriver) Name() string { return d.kind }

// Docker's option names and defaults.
const (
	OptParent      = "parent"
	OptMacvlanMode = "macvlan_mode"
	OptIpvlanMode  = "ipvlan_mode"
	OptIpvlanFlag  = "ipvlan_flag"
)

var (
	macvlanModes = []string{"bridge", "vepa", "private", "passthru"}
	ipvlanModes  = []string{"l2", "l3", "l3s"}
	ipvlanFlags  = []string{"bridge", "private", "vepa"}
)

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// Configure reads -o parent, macvlan_mode or ipvlan_mode and ipvlan_flag,
// with Docker's defaults and messages.
func (d lanDriver) Configure(n *store.Network, opts []string) error {
	n.Options = map[string]string{}
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" {
			return fmt.Errorf("invalid option %q: expected KEY=VALUE", o)
		}
		switch {
		case k == OptParent:
			if !ifnameRE().MatchString(v) && !strings.Contains(v, ".") {
				return fmt.Errorf("invalid -o parent %q: not an interface name", v)
			}
		case k == OptMacvlanMode && d.kind == Macvlan:
			if !oneOf(v, macvlanModes) {
				return fmt.Errorf("requested macvlan mode '%s' is not valid, 'bridge' mode is the macvlan driver default", v)
			}
		case k == OptIpvlanMode && d.kind == Ipvlan:
			if !oneOf(v, ipvlanModes) {
				return fmt.Errorf("requested ipvlan mode '%s' is not valid, 'l2' mode is the ipvlan driver default", v)
			}
		case k == OptIpvlanFlag && d.kind == Ipvlan:
			if !oneOf(v, ipvlanFlags) {
				return fmt.Errorf("requested ipvlan flag '%s' is not valid, 'bridge' is the ipvlan driver default", v)
			}
		default:
			if d.kind == Macvlan {
				return fmt.Errorf("unknown option %q for the macvlan driver: supported are %s and %s", k, OptParent, OptMacvlanMode)
			}
			return fmt.Errorf("unknown option %q for the ipvlan driver: supported are %s, %s and %s", k, OptParent, OptIpvlanMode, OptIpvlanFlag)
		}
		n.Options[k] = v
	}
	return nil
}

// OnLinkDefault says whether a network's default route has no gateway:
// ipvlan L3 and L3S, where Docker installs "default dev ethN" (the
// parent routes; the LAN needs routes to the sandboxes).
func OnLinkDefault(n *store.Network) bool {
	if n.Driver != Ipvlan {
		return false
	}
	mode, _ := lanDriver{kind: Ipvlan}.mode(n)
	return mode == "l3" || mode == "l3s"
}

// Parent is the host link a macvlan or ipvlan network's sandboxes are on.
func Parent(n *store.Network) string { return n.Options[OptParent] }

// mode is the network's mode and flag, Docker's defaults when not given
// (bridge; l2 and bridge).
func (d lanDriver) mode(n *store.Network) (mode, flag string) {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	if d.kind == Macvlan {
		return or(n.Options[OptMacvlanMode], "bridge"), ""
	}
	return or(n.Options[OptIpvlanMode], "l2"), or(n.Options[OptIpvlanFlag], "bridge")
}

// Place checks the parent and the kernel, and Docker's rules for sharing a
// parent, before anything changes.
func (d lanDriver) Place(n *store.Network, h Host) error {
	if !h.Supports(d.kind) {
		return fmt.Errorf("this kernel has no %s support (a kernel built with CONFIG_%s, as Debian's, has it)", d.kind, strings.ToUpper(d.kind))
	}
	parent := Parent(n)
	switch kind, ok := h.Link(parent); {
	case parent == "":
		// As Docker: a dummy parent of the network's own, and internal.
		if !h.Supports("dummy") {
			return fmt.Errorf("a %s network without -o parent needs a dummy link, and this kernel has no dummy link support (CONFIG_DUMMY): give -o parent", d.kind)
		}
		n.Options[OptParent], n.ParentCreated, n.Internal = "mdnd"+n.ID[:11], true, true
		return nil
	case !ok && strings.Contains(parent, "."):
		if err := placeVLAN(n, h, parent); err != nil {
			return err
		}
	case !ok:
		return fmt.Errorf("-o parent interface was not found on the host: %s", parent)
	case kind == "loopback":
		return fmt.Errorf("loopback interface is not a valid %s parent link", d.kind)
	}
	mode, _ := d.mode(n)
	for _, o := range h.Networks() {
		if o.Name == n.Name || Parent(o) != parent || (o.Driver != Macvlan && o.Driver != Ipvlan) {
			continue
		}
		switch {
		case d.kind == Ipvlan || o.Driver == Ipvlan:
			return fmt.Errorf("network %s is already using parent interface %s", o.Name, parent)
		case mode == "passthru":
			return fmt.Errorf("cannot use mode passthru, macvlan network %s is already using parent interface %s", o.Name, parent)
		case o.Options[OptMacvlanMode] == "passthru":
			return fmt.Errorf("macvlan network %s is already using parent interface %s in mode passthru", o.Name, parent)
		}
	}
	return nil
}

// placeVLAN checks a parent written IF.VLAN that does not exist yet, as
// Docker parses it: minidocker-net creates it, and it goes with the last
// network on it.
func placeVLAN(n *store.Network, h Host, parent string) error {
	i := strings.LastIndex(parent, ".")
	vid, err := strconv.Atoi(parent[i+1:])
	if i <= 0 || err != nil || len(parent) > 15 {
		return fmt.Errorf("required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, instead received %s", parent)
	}
	if vid < 1 || vid > 4094 {
		return fmt.Errorf("vlan id must be between 1-4094, received: %d", vid)
	}
	if kind, ok := h.Link(parent[:i]); !ok {
		return fmt.Errorf("-o parent interface was not found on the host: %s", parent[:i])
	} else if kind == "loopback" {
		return fmt.Errorf("loopback interface is not a valid parent link for a VLAN: %s", parent)
	}
	if !h.Supports("vlan") {
		return fmt.Errorf("-o parent %s is an 802.1Q VLAN link to create, and this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q)", parent)
	}
	n.ParentCreated = true
	return nil
}

// ParentSteps create the parent link minidocker-net made for a network,
// if it did: the VLAN link or the dummy one.
func ParentSteps(n *store.Network) []plan.Step {
	if !n.ParentCreated {
		return nil
	}
	parent := Parent(n)
	if i := strings.LastIndex(parent, "."); i > 0 && !strings.HasPrefix(parent, "mdnd") {
		vid, _ := strconv.Atoi(parent[i+1:])
		return []plan.Step{&hostlink.Create{Name: parent, Type: "vlan", Parent: parent[:i], VlanID: vid}}
	}
	return []plan.Step{&hostlink.Create{Name: parent, Type: "dummy"}}
}

// NetworkSteps: the parent link, when minidocker-net makes it; otherwise
// nothing on the host (the parent is the user's).
func (lanDriver) NetworkSteps(n *store.Network) []plan.Step { return ParentSteps(n) }

// EndpointSteps: the port of the parent, straight in the sandbox, its
// address, up. ipvlan ports share the parent's MAC.
func (d lanDriver) EndpointSteps(sb *store.Sandbox, ep *store.Endpoint, n *store.Network) []plan.Step {
	mode, flag := d.mode(n)
	mac := ep.MAC
	if d.kind == Ipvlan {
		mac = ""
	}
	return addressed(sb, ep, n, &nsnet.LanLink{Netns: sb.Name, Name: ep.IfName, Temp: "mdnt" + ep.ID[:10], Type: d.kind, Parent: Parent(n),
		Mode: mode, Flag: flag, MAC: mac, MTU: n.MTU})
}

// Firewall: none, as Docker's macvlan and ipvlan drivers write none.
func (lanDriver) Firewall(*store.Network) (firewall.Network, bool) { return firewall.Network{}, false }
