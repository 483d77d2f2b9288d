// Package driver is the seam for network drivers: how a kind of network is
// built and removed, how a sandbox is attached to one and detached, and
// what the firewall needs for it. Drivers register by name; each network
// records its driver: bridge; macvlan and ipvlan (lan.go); overlay
// (overlay.go), whose networks are the cluster's; host and null, the
// pre-defined networks' (they build nothing).
package driver

import (
	"fmt"
	"sort"
	"strings"

	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// Driver builds networks of one kind.
type Driver interface {
	Name() string
	// Configure checks a create request's -o options (KEY=VALUE) and
	// fills the driver's part of the record.
	Configure(n *store.Network, opts []string) error
	// Place picks the network's host-side names once its ID is known, and
	// checks what it needs of the host (a parent link, the kernel's link
	// types) before anything changes.
	Place(n *store.Network, h Host) error
	// NetworkSteps build the network; removing it runs them reversed.
	NetworkSteps(n *store.Network) []plan.Step
	// EndpointSteps attach a sandbox (its namespace exists); detaching
	// runs them reversed.
	EndpointSteps(sb *store.Sandbox, ep *store.Endpoint, n *store.Network) []plan.Step
	// Firewall is what the firewall needs for the network (false: none).
	Firewall(n *store.Network) (firewall.Network, bool)
}

// Host is what a driver asks of the host and the other networks while
// it places a network.
type Host interface {
	// Taken says whether an interface name is in use, on the host or by
	// a network being made.
	Taken(name string) bool
	// Link is a host link's type ("veth", "bridge", "device" for a
	// physical one, "loopback"...); false when there is none.
	Link(name string) (string, bool)
	// Supports says whether the kernel has a link type.
	Supports(kind string) bool
	// Networks are the other networks.
	Networks() []*store.Network
}

var drivers = map[string]Driver{}

// Register makes a driver known by its name.
func Register(d Driver) {
	if _, dup := drivers[d.Name()]; dup {
		panic("driver registered twice: " + d.Name())
	}
	drivers[d.Name()] = d
}

// Get returns the driver of that name; "" is bridge, as on Docker.
func Get(name string) (Driver, error) {
	if name == "" {
		name = Bridge
	}
	if d, ok := drivers[name]; ok {
		return d, nil
	}
	var names []string
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("driver %q is not supported: the drivers are %s", name, strings.Join(names, ", "))
}

// Of returns a network's driver: records written before drivers were
// recorded are bridge networks.
func Of(n *store.Network) Driver {
	d, err := Get(n.Driver)
	if err != nil {
		return null{} // a record of a driver this build lacks: it builds nothing
	}
	return d
}

func init() {
	Register(bridgeDriver{})
	Register(lanDriver{kind: Macvlan})
	Register(lanDriver{kind: Ipvlan})
	Register(overlayDriver{})
	Register(host{})
	Register(null{})
}

// host is the pre-defined network "host": sandboxes share the host's
// namespace, nothing is built.
type host struct{ none }

func (host) Name() string { return HostNet }

// null is the pre-defined network "none": sandboxes have loopback only.
type null struct{ none }

func (null) Name() string { return Null }

// none builds nothing and cannot be created by hand (Docker: only one
// instance of the host and none networks).
type none struct{}

func (none) Configure(n *store.Network, _ []string) error {
	return fmt.Errorf("only one instance of %q network is allowed", Of(n).Name())
}
func (none) Place(*store.Network, Host) error        { return nil }
func (none) NetworkSteps(*store.Network) []plan.Step { return nil }
func (none) EndpointSteps(*store.Sandbox, *store.Endpoint, *store.Network) []plan.Step {
	return nil
}
func (none) Firewall(*store.Network) (firewall.Network, bool) { return firewall.Network{}, false }

// Driver names.
const (
	Bridge  = "bridge"
	HostNet = "host"
	Null    = "null"
	Macvlan = "macvlan"
	Ipvlan  = "ipvlan"
)
