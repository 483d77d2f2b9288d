package engine

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/ipam"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// NetworkRequest is `network create`.
type NetworkRequest struct {
	Name   string
	Driver string
	// --subnet, --gateway, --ip-range: at most one of each per family.
	Subnets  []string
	Gateways []string
	IPRanges []string
	IPv6     bool // --ipv6
	NoIPv4   bool // --ipv4=false
	Internal bool
	Options  []string // KEY=VALUE
	Labels   []string // KEY=VALUE
}

// family is one address family's --subnet, --gateway and --ip-range.
type family struct{ subnet, gateway, ipRange string }

// families sorts a request's address options by family.
func families(req NetworkRequest) (v4, v6 family, err error) {
	for _, o := range []struct {
		flag string
		vals []string
		pick func(*family) *string
	}{
		{"--subnet", req.Subnets, func(f *family) *string { return &f.subnet }},
		{"--gateway", req.Gateways, func(f *family) *string { return &f.gateway }},
		{"--ip-range", req.IPRanges, func(f *family) *string { return &f.ipRange }},
	} {
		for _, v := range o.vals {
			f, name := &v4, "IPv4"
			if ipam.IsIPv6(v) {
				f, name = &v6, "IPv6"
			}
			if p := o.pick(f); *p == "" {
				*p = v
			} else {
				return v4, v6, fmt.Errorf("%s given twice for %s (%s and %s): minidocker-net takes one subnet per address family", o.flag, name, *p, v)
			}
		}
	}
	if !req.IPv6 && v6 != (family{}) {
		return v4, v6, fmt.Errorf("IPv6 --subnet, --gateway or --ip-range given without --ipv6: add --ipv6 to give the network IPv6")
	}
	if req.NoIPv4 && v4 != (family{}) {
		return v4, v6, fmt.Errorf("IPv4 --subnet, --gateway or --ip-range given with --ipv4=false")
	}
	return v4, v6, nil
}

func parseKV(what, s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("invalid %s %q: expected KEY=VALUE", what, s)
	}
	return k, v, nil
}

// buildNetwork validates a request into a network record (without subnet).
func buildNetwork(req NetworkRequest) (*store.Network, error) {
	if err := ValidateNetworkName(req.Name); err != nil {
		return nil, err
	}
	if model.Predefined(req.Name) {
		return nil, fmt.Errorf("operation is not permitted on predefined %s network", req.Name)
	}
	d, err := driver.Get(req.Driver)
	if err != nil {
		return nil, err
	}
	if req.NoIPv4 && !req.IPv6 {
		return nil, errors.New("IPv4 or IPv6 must be enabled")
	}
	n := &store.Network{ID: NewID(), Name: req.Name, Driver: d.Name(), Created: time.Now().UTC(), ICC: true, Masquerade: true, Internal: req.Internal,
		IPv6: req.IPv6, NoIPv4: req.NoIPv4}
	if err := d.Configure(n, req.Options); err != nil {
		return nil, err
	}
	for _, l := range req.Labels {
		k, v, err := parseKV("label", l)
		if err != nil {
			return nil, err
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[k] = v
	}
	return n, nil
}

// hostRoutes returns the host's IPv4 routes other than default routes and
// those of our own networks: prefixes a new network must not overlap. Our
// bridges' routes are known by their prefix, not by looking up each
// route's link (one netlink request per route, 2-4 ms at 40 networks).
func (t *tx) hostRoutes() ([]netip.Prefix, error) {
	routes, err := t.e.kernel.Routes()
	if err != nil {
		return nil, err
	}
	ours := map[netip.Prefix]bool{}
	for _, n := range t.new.Networks {
		ours[n.Subnet.Masked()] = true
		if n.IPv6 {
			ours[n.Subnet6.Masked()] = true
		}
	}
	return slices.DeleteFunc(routes, func(p netip.Prefix) bool { return ours[p] }), nil
}

func usedSubnets(s *store.State) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range s.Networks {
		if !n.NoIPv4 {
			out = append(out, n.Subnet)
		}
	}
	return out
}

// assignAddresses gives a network its subnet, gateway and range, of
// each family it carries.
func (t *tx) assignAddresses(n *store.Network, req NetworkRequest) error {
	v4, v6, err := families(req)
	if err != nil {
		return err
	}
	if n.NoIPv4 {
		return t.assignAddresses6(n, v6)
	}
	var sub netip.Prefix
	if v4.subnet != "" {
		if sub, err = ipam.ParseSubnet(v4.subnet); err != nil {
			return err
		}
		for _, o := range t.new.Networks {
			if o.Subnet.Overlaps(sub) {
				return ipam.ErrOverlap
			}
		}
		n.UserSubnet = true
	} else {
		if v4.gateway != "" || v4.ipRange != "" {
			return errors.New("--gateway and --ip-range need --subnet")
		}
		reserved, err := t.hostRoutes()
		if err != nil {
			return err
		}
		// A pool that holds one of the host's nameservers would route the
		// host's DNS into the bridge: Docker skips it too.
		reserved = append(reserved, t.e.kernel.Nameservers()...)
		if sub, err = ipam.PickSubnet(usedSubnets(t.new), reserved, n.Default); err != nil {
			return err
		}
	}
	pool, err := newPool(sub, v4, ipam.ParseSubnet, ipam.ParseAddr)
	if err != nil {
		return err
	}
	n.Subnet, n.IPRange, n.Gateway = pool.Subnet, pool.Range, pool.Gateway
	if n.IPv6 {
		return t.assignAddresses6(n, v6)
	}
	return nil
}

// assignAddresses6 gives an IPv6 network its IPv6 subnet, gateway and
// range: without --subnet, the first free /64 of the host's ULA /48.
func (t *tx) assignAddresses6(n *store.Network, v6 family) error {
	var sub netip.Prefix
	var err error
	var used []netip.Prefix
	for _, o := range t.new.Networks {
		if o.IPv6 {
			used = append(used, o.Subnet6)
		}
	}
	if v6.subnet != "" {
		if sub, err = ipam.ParseSubnet6(v6.subnet); err != nil {
			return err
		}
		for _, u := range used {
			if u.Overlaps(sub) {
				return ipam.ErrOverlap
			}
		}
		n.UserSubnet6 = true
	} else {
		if v6.gateway != "" || v6.ipRange != "" {
			return errors.New("an IPv6 --gateway or --ip-range needs an IPv6 --subnet")
		}
		reserved, err := t.hostRoutes()
		if err != nil {
			return err
		}
		id, err := t.e.opts.Paths.EngineID(NewID, !t.e.opts.DryRun)
		if err != nil {
			return err
		}
		if sub, err = ipam.PickSubnet6(ipam.ULA(id), used, reserved); err != nil {
			return err
		}
	}
	pool, err := newPool(sub, v6, ipam.ParseSubnet6, ipam.ParseAddr6)
	if err != nil {
		return err
	}
	n.Subnet6, n.IPRange6, n.Gateway6 = pool.Subnet, pool.Range, pool.Gateway
	return nil
}

// newPool is a subnet's pool with the family's --ip-range and --gateway,
// read by that family's parsers.
func newPool(sub netip.Prefix, f family, parsePrefix func(string) (netip.Prefix, error), parseAddr func(what, s string) (netip.Addr, error)) (ipam.Pool, error) {
	var rng netip.Prefix
	var gw netip.Addr
	var err error
	if f.ipRange != "" {
		if rng, err = parsePrefix(f.ipRange); err != nil {
			return ipam.Pool{}, fmt.Errorf("invalid --ip-range: %w", err)
		}
	}
	if f.gateway != "" {
		if gw, err = parseAddr("gateway", f.gateway); err != nil {
			return ipam.Pool{}, err
		}
	}
	return ipam.NewPool(sub, rng, gw)
}

// networkSteps are the steps that build a network's kernel objects, its
// driver's (its rules come from the firewall intent). Removing the
// network runs them reversed.
func networkSteps(n *store.Network) []plan.Step { return driver.Of(n).NetworkSteps(n) }

// addNetwork adds a network to the new state and plans its creation.
func (t *tx) addNetwork(n *store.Network, req NetworkRequest) error {
	if _, ok := t.new.Networks[n.Name]; ok {
		return fmt.Errorf("network with name %s already exists", n.Name)
	}
	if err := t.assignAddresses(n, req); err != nil {
		return err
	}
	if err := driver.Of(n).Place(n, placing{t}); err != nil {
		return err
	}
	if _, bridged := driver.Of(n).Firewall(n); bridged {
		if err := t.hostSetup(); err != nil {
			return err
		}
		if n.IPv6 {
			if err := t.hostSetup6(); err != nil {
				return err
			}
		}
	}
	t.new.Networks[n.Name] = n
	t.setup = append(t.setup, networkSteps(n)...)
	return nil
}

// placing is the host as a driver sees it while it places a network.
type placing struct{ t *tx }

func (p placing) Taken(name string) bool {
	for _, o := range p.t.new.Networks {
		if o.Bridge == name {
			return true
		}
	}
	return p.t.e.kernel.LinkExists(name)
}
func (p placing) Link(name string) (string, bool) { return p.t.e.kernel.LinkType(name) }
func (p placing) Supports(kind string) bool       { return p.t.e.kernel.SupportsLinkType(kind) }
func (p placing) Networks() []*store.Network {
	var out []*store.Network
	for _, name := range p.t.new.NetworkNames() {
		out = append(out, p.t.new.Networks[name])
	}
	return out
}

// CreateNetwork is `network create`.
func (e *Engine) CreateNetwork(req NetworkRequest) (*store.Network, error) {
	n, err := buildNetwork(req)
	if err != nil {
		return nil, err
	}
	err = e.mutate("network create "+req.Name, func(t *tx) error {
		if driver.IsGlobal(n) {
			return t.addGlobalNetwork(n, req)
		}
		if err := t.notGlobal(n.Name); err != nil {
			return err
		}
		return t.addNetwork(n, req)
	})
	return n, err
}

// defaultNetwork is the record of the pre-defined network "bridge" as its
// first sandbox would create it.
func (t *tx) defaultNetwork() (*store.Network, error) {
	n := &store.Network{
		ID: model.BuiltinID(model.DefaultNetwork), Name: model.DefaultNetwork, Driver: driver.Bridge, Created: time.Now().UTC(), Bridge: model.DefaultBridge,
		ICC: true, Masquerade: true, Default: true,
		Options: map[string]string{
			"com.docker.network.bridge.default_bridge": "true",
			driver.OptICC:        "true",
			driver.OptMasquerade: "true",
			driver.OptBridgeName: model.DefaultBridge,
		},
	}
	return n, t.assignAddresses(n, NetworkRequest{})
}

// Listed is the state as network ls and inspect show it: the default
// network is there from the start, as on Docker, with the addresses its
// first sandbox will give it.
//
// In a cluster, the overlay networks are there too, with their endpoints
// on every host (the other hosts' as sandboxes keyed NAME@HOST); a store
// that does not answer is warned about, and the local networks shown.
func (e *Engine) Listed(s *store.State) *store.State {
	l := *s
	l.Networks = maps.Clone(s.Networks)
	l.Sandboxes = maps.Clone(s.Sandboxes)
	if s.Networks[model.DefaultNetwork] == nil {
		t := &tx{e: e, old: s, new: s}
		if n, err := t.defaultNetwork(); err == nil {
			l.Networks[n.Name] = n
		}
	}
	if cfg, ok := e.clusterConfig(); ok {
		if err := e.listGlobal(&l, cfg); err != nil {
			e.warn("overlay networks are not shown: %v", err)
		}
	}
	return &l
}

// ensureDefault creates the pre-defined network "bridge" on first use.
func (t *tx) ensureDefault() error {
	if _, ok := t.new.Networks[model.DefaultNetwork]; ok {
		return nil
	}
	if t.e.kernel.LinkExists(model.DefaultBridge) {
		return fmt.Errorf("cannot create the default network: an interface named %s already exists (left by another tool? 'minidocker-net reset' removes ours)", model.DefaultBridge)
	}
	n, err := t.defaultNetwork()
	if err != nil {
		return err
	}
	if err := t.hostSetup(); err != nil {
		return err
	}
	t.new.Networks[n.Name] = n
	t.setup = append(t.setup, networkSteps(n)...)
	return nil
}

// settleDefault removes the default network once no sandbox needs it:
// its bridge and rules went with its last sandbox, as they came with the
// first.
func (t *tx) settleDefault() error {
	n := t.new.Networks[model.DefaultNetwork]
	if n == nil || model.DefaultNeeded(t.new) || len(t.new.Attached(n.Name)) > 0 {
		return nil
	}
	return t.removeNetwork(n.Name, true)
}

// ActiveEndpointsError is Docker 28's refusal to remove a network in use.
type ActiveEndpointsError struct {
	Network   string
	Sandboxes []*store.Sandbox
}

func (e *ActiveEndpointsError) Error() string {
	var parts []string
	for _, sb := range e.Sandboxes {
		parts = append(parts, fmt.Sprintf("name:%q id:%q", sb.Name, sb.ID[:12]))
	}
	return fmt.Sprintf("error while removing network: network %s has active endpoints (%s)", e.Network, strings.Join(parts, ", "))
}

// removeNetwork plans the removal of a network without endpoints.
func (t *tx) removeNetwork(ref string, allowDefault bool) error {
	name, err := t.networkName(ref)
	if err != nil {
		return err
	}
	n, ok := t.new.Networks[name]
	if !ok && name == model.DefaultNetwork && !allowDefault {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed", name)
	}
	if !ok && t.global[name] != nil {
		return t.removeGlobal(name)
	}
	if !ok {
		if name == model.HostNetwork || name == model.NoneNetwork {
			return fmt.Errorf("%s is a pre-defined network and cannot be removed", name)
		}
		return &model.NotFoundError{Kind: "network", Name: name}
	}
	if n.Default && !allowDefault {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed", name)
	}
	if att := t.new.Attached(name); len(att) > 0 {
		return &ActiveEndpointsError{Network: name, Sandboxes: att}
	}
	delete(t.new.Networks, name)
	t.teardown = append(t.teardown, plan.Reversed(networkSteps(t.handParent(n)))...)
	if n.IPv6 {
		t.hostTeardown6()
	}
	t.hostTeardown()
	return nil
}

// handParent hands the parent link minidocker-net made for a removed
// network to another network on it, which then deletes it in turn: the
// link goes with the last network that uses it. It returns the removed
// network as its teardown must see it.
func (t *tx) handParent(n *store.Network) *store.Network {
	if !n.ParentCreated {
		return n
	}
	for _, name := range t.new.NetworkNames() {
		if o := t.new.Networks[name]; driver.Parent(o) == driver.Parent(n) {
			heir := *o
			heir.ParentCreated = true
			t.new.Networks[name] = &heir
			left := *n
			left.ParentCreated = false
			return &left
		}
	}
	return n
}

// RemoveNetwork is `network rm` for one network.
func (e *Engine) RemoveNetwork(name string) error {
	return e.mutate("network rm "+name, func(t *tx) error { return t.removeNetwork(name, false) })
}

// PruneNetworks removes every user network without endpoints.
func (e *Engine) PruneNetworks() ([]string, error) {
	var removed []string
	err := e.mutate("network prune", func(t *tx) error {
		for _, name := range t.new.NetworkNames() {
			n := t.new.Networks[name]
			if n.Default || len(t.new.Attached(name)) > 0 {
				continue
			}
			if err := t.removeNetwork(name, false); err != nil {
				return err
			}
			removed = append(removed, name)
		}
		return nil
	})
	sort.Strings(removed)
	if e.opts.DryRun {
		return nil, err
	}
	return removed, err
}
