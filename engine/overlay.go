package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/hostd"
	"github.com/minidocker-net/minidocker-net/ipam"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// GatewayBridgeNetwork is the bridge network every sandbox on a
// non-internal overlay network is also on, for traffic leaving the
// cluster and for published ports: Docker's docker_gwbridge (icc off,
// masquerade on). It comes with the first such sandbox and goes with the
// last.
const GatewayBridgeNetwork = "mdn_gwbridge"

// globals are the overlay networks, read from the store once per command.
func (t *tx) globals() (map[string]*store.Network, error) {
	if t.global != nil {
		return t.global, nil
	}
	c, err := t.e.clusterStore()
	if err != nil {
		return nil, err
	}
	nets, err := c.Networks()
	if err != nil {
		return nil, err
	}
	t.global = nets
	return nets, nil
}

// globalName finds an overlay network this host has no copy of, by name,
// ID or ID prefix.
func (t *tx) globalName(ref string) (string, error) {
	if _, ok := t.e.clusterConfig(); !ok {
		return "", &model.NotFoundError{Kind: "network", Name: ref}
	}
	nets, err := t.globals()
	if err != nil {
		return "", fmt.Errorf("network %s not found here, and %w", ref, err)
	}
	return model.NetworkName(&store.State{Networks: nets}, ref)
}

// notGlobal refuses a local network with an overlay network's name, as
// Docker refuses a name taken in either scope; a store that does not
// answer does not stop a local network.
func (t *tx) notGlobal(name string) error {
	if _, ok := t.e.clusterConfig(); !ok {
		return nil
	}
	if nets, err := t.globals(); err == nil && nets[name] != nil {
		return fmt.Errorf("network with name %s already exists", name)
	}
	return nil
}

// adopt gives this host a copy of an overlay network and plans its part
// here (namespace, bridge, tunnel): its first local endpoint comes.
func (t *tx) adopt(name string) (*store.Network, error) {
	n := *t.global[name]
	if n.Driver != driver.Overlay {
		return nil, fmt.Errorf("network %s: driver %q in the cluster store is not supported", name, n.Driver)
	}
	if err := driver.Of(&n).Place(&n, placing{t}); err != nil {
		return nil, err
	}
	t.new.Networks[name] = &n
	t.setup = append(t.setup, networkSteps(&n)...)
	return &n, nil
}

// addGlobalNetwork is network create -d overlay: the network, its VNI and
// its subnet are claimed in the store in one transaction (another host
// creating one at the same time makes the command start over).
func (t *tx) addGlobalNetwork(n *store.Network, req NetworkRequest) error {
	c, err := t.e.clusterStore()
	if err != nil {
		return fmt.Errorf("network create -d overlay: %w", err)
	}
	nets, err := t.globals()
	if err != nil {
		return err
	}
	if _, ok := nets[n.Name]; ok {
		return fmt.Errorf("network with name %s already exists", n.Name)
	}
	if _, ok := t.new.Networks[n.Name]; ok {
		return fmt.Errorf("network with name %s already exists", n.Name)
	}
	if n.IPv6 || n.NoIPv4 {
		return errors.New("overlay networks here carry IPv4 only: --ipv6 is not supported with -d overlay")
	}
	vnis, subnets, err := c.Used()
	if err != nil {
		return err
	}
	n.VNI = 256 // Docker's first VXLAN ID
	for vnis[n.VNI] {
		n.VNI++
	}
	if err := t.globalSubnet(n, req, subnets); err != nil {
		return err
	}
	claim, err := t.networkClaim(n)
	if err != nil {
		return err
	}
	t.cluster = append(t.cluster, claim)
	return nil
}

// globalSubnet gives an overlay network its subnet: the one asked for,
// else the first free /24 of 10.0.0.0/8, Docker's global pool, that
// overlaps no other overlay network and nothing of this host's.
func (t *tx) globalSubnet(n *store.Network, req NetworkRequest, taken []netip.Prefix) error {
	local := usedSubnets(t.new)
	routes, err := t.hostRoutes()
	if err != nil {
		return err
	}
	v4, _, err := families(req)
	if err != nil {
		return err
	}
	if v4.subnet != "" {
		p, err := ipam.ParseSubnet(v4.subnet)
		if err != nil {
			return err
		}
		for _, o := range append(taken, local...) {
			if o.Overlaps(p) {
				return fmt.Errorf("invalid pool request: Pool overlaps with other one on this address space")
			}
		}
		n.Subnet, n.UserSubnet = p, true
	} else {
		if v4.gateway != "" || v4.ipRange != "" {
			return errors.New("--gateway and --ip-range need --subnet")
		}
		pool := netip.MustParsePrefix("10.0.0.0/8")
		found := false
		for a := pool.Addr(); pool.Contains(a) && !found; {
			p := netip.PrefixFrom(a, 24)
			if !slices.ContainsFunc(append(append(taken, local...), routes...), p.Overlaps) {
				n.Subnet, found = p, true
				break
			}
			for i := 0; i < 256; i++ {
				a = a.Next()
			}
		}
		if !found {
			return errors.New("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
		}
	}
	pl, err := newPool(n.Subnet, v4, ipam.ParseSubnet, ipam.ParseAddr)
	if err != nil {
		return err
	}
	n.Gateway, n.IPRange = pl.Gateway, pl.Range
	return nil
}

// networkClaim is the store's claim of an overlay network: its record, its
// VNI and its subnet, all or none; removing the network releases it.
func (t *tx) networkClaim(n *store.Network) (*cluster.Claim, error) {
	val, err := encode(n)
	if err != nil {
		return nil, err
	}
	cfg, _ := t.e.clusterConfig()
	return &cluster.Claim{Store: cfg.Store, What: "network " + n.Name, KVs: []cluster.KV{
		{Key: cluster.NetworkKey(n.Name), Value: val},
		{Key: cluster.VNIKey(n.VNI), Value: n.ID},
		{Key: cluster.SubnetKey(n.Subnet), Value: n.ID},
	}}, nil
}

// removeGlobal is network rm of an overlay network: refused while any
// host has an endpoint on it, as Docker's endpoint count did.
func (t *tx) removeGlobal(name string) error {
	n := t.global[name]
	eps, err := t.endpointsOn(n)
	if err != nil {
		return err
	}
	if len(eps) > 0 {
		var parts []string
		for _, ep := range eps {
			parts = append(parts, fmt.Sprintf("name:%q id:%q host:%q", ep.Sandbox, ep.SandboxID[:12], ep.Host))
		}
		return fmt.Errorf("error while removing network: network %s has active endpoints (%s)", name, strings.Join(parts, ", "))
	}
	claim, err := t.networkClaim(n)
	if err != nil {
		return err
	}
	t.cluster = append(t.cluster, &cluster.Release{Claim: *claim})
	return nil
}

// endpointsOn are an overlay network's endpoints on every host.
func (t *tx) endpointsOn(n *store.Network) ([]cluster.Endpoint, error) {
	c, err := t.e.clusterStore()
	if err != nil {
		return nil, err
	}
	eps, _, err := c.Endpoints(n.ID)
	return eps, err
}

// clusterUsed adds the addresses other hosts hold on an overlay network.
func (t *tx) clusterUsed(n *store.Network, used map[netip.Addr]bool) error {
	eps, err := t.endpointsOn(n)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		used[ep.IP] = true
	}
	return nil
}

// gatewayBridge is the gateway bridge network, created on first use.
func (t *tx) gatewayBridge() (*store.Network, error) {
	if n := t.new.Networks[GatewayBridgeNetwork]; n != nil {
		return n, nil
	}
	n := &store.Network{
		ID: model.BuiltinID(GatewayBridgeNetwork), Name: GatewayBridgeNetwork, Driver: driver.Bridge, Created: time.Now().UTC(),
		Bridge: GatewayBridgeNetwork, ICC: false, Masquerade: true, GatewayBridge: true,
		Options: map[string]string{driver.OptBridgeName: GatewayBridgeNetwork, driver.OptICC: "false", driver.OptMasquerade: "true"},
	}
	if err := t.addNetwork(n, NetworkRequest{}); err != nil {
		return nil, fmt.Errorf("the gateway bridge network %s: %w", GatewayBridgeNetwork, err)
	}
	return n, nil
}

// needsGateway says whether a sandbox needs the gateway bridge: it is on
// a non-internal overlay network.
func needsGateway(s *store.State, sb *store.Sandbox) bool {
	for _, ep := range sb.Endpoints {
		if n := s.Networks[ep.Network]; driver.IsGlobal(n) && !n.Internal {
			return true
		}
	}
	return false
}

// joinGateway puts a sandbox that joined a non-internal overlay network
// on the gateway bridge too; it returns the new endpoint (nil: none).
func (t *tx) joinGateway(sb *store.Sandbox) (*store.Endpoint, *store.Network, error) {
	if !needsGateway(t.new, sb) || sb.Endpoint(GatewayBridgeNetwork) != nil {
		return nil, nil, nil
	}
	gw, err := t.gatewayBridge()
	if err != nil {
		return nil, nil, err
	}
	ep, err := t.newEndpoint(sb, gw, "", "", nil, 0)
	if err != nil {
		return nil, nil, err
	}
	sb.Endpoints = append(sb.Endpoints, ep)
	return ep, gw, nil
}

// settleGlobal ends a command that changed overlay endpoints: a host's
// copy of an overlay network goes with its last local endpoint (and its
// part of the kernel with it); the gateway bridge goes with its last
// sandbox; every endpoint that came or went on an overlay network is
// claimed or released in the store, first in the plan, under the host's
// lease.
func (t *tx) settleGlobal() error {
	if err := t.dropUnneeded(); err != nil {
		return err
	}
	came, went := endpointChanges(t.old, t.new)
	if len(came)+len(went) == 0 {
		return nil
	}
	cfg, ok := t.e.clusterConfig()
	if !ok {
		return errors.New("this host has endpoints on overlay networks but is in no cluster any more: run 'minidocker-net reset'")
	}
	return t.claimEndpoints(cfg, came, went)
}

// dropUnneeded removes the copies of overlay networks no local sandbox
// is on (their part here goes with them), and the gateway bridge when no
// sandbox is on it.
func (t *tx) dropUnneeded() error {
	for _, name := range t.new.NetworkNames() {
		n := t.new.Networks[name]
		if driver.IsGlobal(n) && len(t.new.Attached(name)) == 0 {
			delete(t.new.Networks, name)
			t.teardown = append(t.teardown, plan.Reversed(networkSteps(n))...)
		}
	}
	if n := t.new.Networks[GatewayBridgeNetwork]; n != nil && len(t.new.Attached(n.Name)) == 0 {
		return t.removeNetwork(n.Name, true)
	}
	return nil
}

// claimEndpoints plans the store's claims of endpoints that came (under
// the host's lease, which the agent holds) and releases of those that
// went, first in the plan.
func (t *tx) claimEndpoints(cfg cluster.Config, came, went []cluster.Endpoint) error {
	var lease int64
	if len(came) > 0 && !t.e.opts.DryRun {
		if err := t.e.ensureAgent(); err != nil {
			return err
		}
		var err error
		if lease, err = hostd.Lease(t.e.opts.Paths); err != nil {
			return fmt.Errorf("the cluster agent: %w", err)
		}
	}
	for _, r := range went {
		claim, err := endpointClaim(cfg, r, 0)
		if err != nil {
			return err
		}
		t.cluster = append(t.cluster, &cluster.Release{Claim: *claim})
	}
	for _, r := range came {
		claim, err := endpointClaim(cfg, r, lease)
		if err != nil {
			return err
		}
		t.cluster = append(t.cluster, claim)
	}
	return nil
}

// endpointChanges are the overlay endpoints a command adds and removes.
func endpointChanges(old, new *store.State) (came, went []cluster.Endpoint) {
	o, n := cluster.LocalEndpoints(old, "", netip.Addr{}), cluster.LocalEndpoints(new, "", netip.Addr{})
	key := func(e cluster.Endpoint) string { return e.NetworkID + "/" + e.IP.String() + "/" + e.ID }
	seen := map[string]bool{}
	for _, e := range o {
		seen[key(e)] = true
	}
	for _, e := range n {
		if !seen[key(e)] {
			came = append(came, e)
		}
		delete(seen, key(e))
	}
	for _, e := range o {
		if seen[key(e)] {
			went = append(went, e)
		}
	}
	return came, went
}

// endpointClaim is the store's claim of one endpoint's address.
func endpointClaim(cfg cluster.Config, e cluster.Endpoint, lease int64) (*cluster.Claim, error) {
	e.Host, e.VTEP = cfg.Host, cfg.Advertise
	val, err := encode(e)
	if err != nil {
		return nil, err
	}
	return &cluster.Claim{Store: cfg.Store, Lease: lease, What: fmt.Sprintf("address %s on %s", e.IP, e.Network),
		KVs: []cluster.KV{{Key: cluster.EndpointKey(e.NetworkID, e.IP), Value: val}}}, nil
}

// encode is a record's value in the store.
func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
