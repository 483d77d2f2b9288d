package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/hostd"
	"github.com/minidocker-net/minidocker-net/ipam"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// GatewayBridgeNetwork is the bridge network every sandbox on a
// non-internal overlay network is also on, for traffic leaving the
// cluster and for published ports: Docker's docker_gwbridge (icc off,
// masquerade on). It comes with the first such sandbox and goes with the
// last.
const GatewayBridgeNetwork = "mdn_gwbridge"

// clusterConfig is the cluster this host is in: given by flags (a dry
// run's first use is not remembered), else remembered from their first
// use, with the ID the host was given when it joined.
func (e *Engine) clusterConfig() (cluster.Config, bool) {
	c, ok, err := cluster.Load(e.opts.Paths)
	if err != nil {
		ok = false
	}
	if f := e.opts.Cluster; f.Store != "" {
		if !ok || c.Store != f.Store || c.Advertise != f.Advertise {
			f.Host = "(this host)" // a dry run's: it joins nothing
			return f, true
		}
	}
	return c, ok
}

// clusterStore is the cluster store as this command reads it (through the
// host's process), reached once per command.
func (e *Engine) clusterStore() (cluster.Store, error) {
	cfg, ok := e.clusterConfig()
	if !ok {
		return nil, errors.New("this host is in no cluster: give --cluster-store etcd://HOST:PORT and --cluster-advertise IP (or " + cluster.EnvStore + " and " + cluster.EnvAdvertise + ")")
	}
	if e.cluster == nil {
		c, err := e.opts.ClusterStore(cfg)
		if err != nil {
			return nil, err
		}
		e.cluster = c
	}
	return e.cluster, nil
}

// Join makes this host part of a cluster: the configuration is
// remembered, and the cluster agent (in minidocker-netd) announces the
// host under a lease it keeps alive.
func (e *Engine) Join(cfg cluster.Config) error {
	st, err := store.Open(e.opts.Paths, !e.opts.DryRun)
	if err != nil {
		return err
	}
	defer st.Close()
	old, ok, err := cluster.Load(e.opts.Paths)
	if err != nil {
		return err
	}
	if ok && old.Store == cfg.Store && old.Advertise == cfg.Advertise && old.Host != "" {
		return e.ensureAgent()
	}
	if e.opts.DryRun {
		fmt.Fprintf(e.opts.Out, "# this host joins the cluster %s as %s: %s remembers it, and the cluster agent announces the host under a lease\n", cfg.Store, cfg.Advertise, cluster.File(e.opts.Paths))
		return nil
	}
	cfg.Host = old.Host
	if cfg.Host == "" {
		cfg.Host = NewID()[:16]
	}
	if err := cluster.Save(e.opts.Paths, cfg); err != nil {
		return fmt.Errorf("remember the cluster configuration: %w", err)
	}
	e.opts.Cluster = cfg
	if hostd.Pid(e.opts.Paths) != 0 {
		return hostd.Sync(e.opts.Paths, nil) // it reads the new configuration
	}
	return e.ensureAgent()
}

// ensureAgent starts the host's one long-running process when it does
// not run: it keeps the host's lease.
func (e *Engine) ensureAgent() error {
	if e.opts.DryRun || hostd.Pid(e.opts.Paths) != 0 {
		return nil
	}
	return hostd.Start(e.opts.Paths)
}

// joined says whether the host is in a cluster (it remembers one).
func joined(p store.Paths) bool {
	_, ok, _ := cluster.Load(p)
	return ok
}

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
	val, err := encode(n)
	if err != nil {
		return err
	}
	cfg, _ := t.e.clusterConfig()
	t.cluster = append(t.cluster, &cluster.Claim{Store: cfg.Store, What: "network " + n.Name, KVs: []cluster.KV{
		{Key: cluster.NetworkKey(n.Name), Value: val},
		{Key: cluster.VNIKey(n.VNI), Value: n.ID},
		{Key: cluster.SubnetKey(n.Subnet), Value: n.ID},
	}})
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

// removeGlobal is network rm of an overlay network: refused while any
// host has an endpoint on it, as Docker's endpoint count did.
func (t *tx) removeGlobal(name string) error {
	n := t.global[name]
	c, err := t.e.clusterStore()
	if err != nil {
		return err
	}
	eps, _, err := c.Endpoints(n.ID)
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
	val, err := encode(n)
	if err != nil {
		return err
	}
	cfg, _ := t.e.clusterConfig()
	t.cluster = append(t.cluster, &cluster.Release{Claim: cluster.Claim{Store: cfg.Store, What: "network " + n.Name, KVs: []cluster.KV{
		{Key: cluster.NetworkKey(n.Name), Value: val},
		{Key: cluster.VNIKey(n.VNI), Value: n.ID},
		{Key: cluster.SubnetKey(n.Subnet), Value: n.ID},
	}}})
	return nil
}

// clusterUsed adds the addresses other hosts hold on an overlay network.
func (t *tx) clusterUsed(n *store.Network, used map[netip.Addr]bool) error {
	c, err := t.e.clusterStore()
	if err != nil {
		return err
	}
	eps, _, err := c.Endpoints(n.ID)
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
	for _, name := range t.new.NetworkNames() {
		n := t.new.Networks[name]
		if driver.IsGlobal(n) && len(t.new.Attached(name)) == 0 {
			delete(t.new.Networks, name)
			t.teardown = append(t.teardown, plan.Reversed(networkSteps(n))...)
		}
	}
	if n := t.new.Networks[GatewayBridgeNetwork]; n != nil && len(t.new.Attached(n.Name)) == 0 {
		if err := t.removeNetwork(n.Name, true); err != nil {
			return err
		}
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

// listGlobal adds the cluster's networks and the other hosts' endpoints
// to a state that only views read.
func (e *Engine) listGlobal(l *store.State, cfg cluster.Config) error {
	c, err := e.clusterStore()
	if err != nil {
		return err
	}
	nets, err := c.Networks()
	if err != nil {
		return err
	}
	for name, n := range nets {
		if l.Networks[name] == nil {
			l.Networks[name] = n
		}
	}
	return e.addRemote(l, cfg)
}

// addRemote adds the other hosts' endpoints on the networks a view's
// state holds, as sandboxes keyed NAME@HOST.
func (e *Engine) addRemote(l *store.State, cfg cluster.Config) error {
	c, err := e.clusterStore()
	if err != nil {
		return err
	}
	eps, _, err := c.Endpoints("")
	if err != nil {
		return err
	}
	hosts, err := c.Hosts()
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if ep.Host == cfg.Host || l.Networks[ep.Network] == nil {
			continue
		}
		l.Sandboxes[ep.Sandbox+"@"+ep.Host] = cluster.RemoteSandbox(ep, hosts[ep.Host].Name)
	}
	return nil
}

// WithRemote is a state for trace and graph: this host's, and on its
// overlay networks the other hosts' endpoints (Sandbox.Remote set). A
// store that does not answer is warned about.
func (e *Engine) WithRemote(s *store.State) *store.State {
	cfg, ok := e.clusterConfig()
	if !ok {
		return s
	}
	l := *s
	l.Sandboxes = maps.Clone(s.Sandboxes)
	if err := e.addRemote(&l, cfg); err != nil {
		e.warn("the other hosts' endpoints are not shown: %v", err)
		return s
	}
	return &l
}

// Node is one host of the cluster as node ls shows it.
type Node struct {
	cluster.Host
	Self      bool
	Endpoints int
}

// Nodes are the hosts present in the cluster (their lease alive).
func (e *Engine) Nodes() ([]Node, error) {
	cfg, _ := e.clusterConfig()
	c, err := e.clusterStore()
	if err != nil {
		return nil, err
	}
	hosts, err := c.Hosts()
	if err != nil {
		return nil, err
	}
	eps, _, err := c.Endpoints("")
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, ep := range eps {
		count[ep.Host]++
	}
	var out []Node
	for _, h := range hosts {
		out = append(out, Node{Host: h, Self: h.ID == cfg.Host, Endpoints: count[h.ID]})
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name+a.ID, b.Name+b.ID) })
	return out, nil
}

// Leave takes this host out of its cluster: refused while it has
// sandboxes on overlay networks; its lease is revoked, which removes its
// keys, and the configuration is forgotten.
func (e *Engine) Leave() error {
	if _, ok := e.clusterConfig(); !ok {
		return errors.New("this host is in no cluster")
	}
	return e.View(func(s *store.State) error {
		var on []string
		for _, name := range s.SandboxNames() {
			for _, ep := range s.Sandboxes[name].Endpoints {
				if driver.IsGlobal(s.Networks[ep.Network]) {
					on = append(on, name+" ("+ep.Network+")")
				}
			}
		}
		if len(on) > 0 {
			return fmt.Errorf("this host has sandboxes on overlay networks: %s: remove or disconnect them first", strings.Join(on, ", "))
		}
		if e.opts.DryRun {
			fmt.Fprintln(e.opts.Out, "# the cluster agent revokes this host's lease (its keys go with it), and "+cluster.File(e.opts.Paths)+" is removed")
			return nil
		}
		if err := cluster.Forget(e.opts.Paths); err != nil {
			return err
		}
		e.opts.Cluster = cluster.Config{}
		return e.syncResolver(s, nil, true)
	})
}

// clusterDrift compares this host's endpoints in the records with the
// store's: those the store lacks, and those it holds that no record names.
func (e *Engine) clusterDrift(s *store.State) (missing, extra []cluster.Endpoint, err error) {
	cfg, _ := e.clusterConfig()
	c, err := e.clusterStore()
	if err != nil {
		return nil, nil, err
	}
	eps, _, err := c.Endpoints("")
	if err != nil {
		return nil, nil, err
	}
	held := map[string]cluster.Endpoint{}
	for _, ep := range eps {
		if ep.Host == cfg.Host {
			held[ep.NetworkID+"/"+ep.IP.String()] = ep
		}
	}
	for _, ep := range cluster.LocalEndpoints(s, cfg.Host, cfg.Advertise) {
		k := ep.NetworkID + "/" + ep.IP.String()
		if h, ok := held[k]; !ok || h.ID != ep.ID {
			missing = append(missing, ep)
		}
		delete(held, k)
	}
	for _, ep := range held {
		extra = append(extra, ep)
	}
	return missing, extra, nil
}

// checkCluster reports the host's part of its cluster: the agent, the
// store's view of this host's endpoints, and each overlay network's
// tunnel against the other hosts' endpoints.
func checkCluster(c *checker, e *Engine, s *store.State) {
	cfg, ok := e.clusterConfig()
	if !ok {
		return
	}
	c.add(Info, fmt.Sprintf("this host is %s in the cluster %s, reached at %s", cfg.Host, cfg.Store, cfg.Advertise), "")
	if e.ResolverPid() == 0 {
		c.add(Drift, fmt.Sprintf("the cluster agent is not running: this host's lease runs out within %d s, and the other hosts drop its endpoints", cluster.LeaseTTL),
			"minidocker-net doctor --fix (or the next command) starts it")
	}
	missing, extra, err := e.clusterDrift(s)
	if err != nil {
		c.add(Fault, err.Error(), "start etcd, or check --cluster-store")
		return
	}
	for _, ep := range missing {
		c.add(Drift, fmt.Sprintf("address %s of sandbox %s on %s is not in the cluster store: the other hosts do not reach it", ep.IP, ep.Sandbox, ep.Network), "minidocker-net doctor --fix writes it")
	}
	for _, ep := range extra {
		c.add(Drift, fmt.Sprintf("the cluster store holds address %s on %s for sandbox %s of this host, which no record names", ep.IP, ep.Network, ep.Sandbox), "minidocker-net doctor --fix removes it")
	}
	cs, _ := e.clusterStore()
	all, _, err := cs.Endpoints("")
	if err != nil {
		return
	}
	for _, name := range s.NetworkNames() {
		n := s.Networks[name]
		if !driver.IsGlobal(n) {
			continue
		}
		want := map[nsnet.Peer]bool{}
		for _, ep := range all {
			if ep.NetworkID == n.ID && ep.Host != cfg.Host {
				want[nsnet.Peer{IP: ep.IP, MAC: ep.MAC, VTEP: ep.VTEP}] = true
			}
		}
		have, err := nsnet.Peers(driver.OverlayNetns(n), driver.OverlayVxlan(n))
		if err != nil {
			continue // checkNetworks reports a missing part
		}
		differ := len(have) != len(want)
		for _, p := range have {
			differ = differ || !want[p]
		}
		if differ {
			c.add(Drift, fmt.Sprintf("the tunnel of overlay network %s knows %d remote endpoints, the cluster store %d", name, len(have), len(want)), "minidocker-net doctor --fix (the cluster agent programs them)")
		} else {
			c.add(OK, fmt.Sprintf("overlay network %s: the tunnel knows the %d remote endpoints the cluster store holds", name, len(want)), "")
		}
	}
}

// repairClaims is doctor --fix's part in the store: this host's addresses
// the store lacks are claimed again, those no record names released.
func (t *tx) repairClaims() error {
	cfg, ok := t.e.clusterConfig()
	if !ok {
		return nil
	}
	missing, extra, err := t.e.clusterDrift(t.new)
	if err != nil || len(missing)+len(extra) == 0 {
		return err
	}
	return t.claimEndpoints(cfg, missing, extra)
}
