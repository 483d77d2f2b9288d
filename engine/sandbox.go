package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/ipam"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/portspec"
	"github.com/minidocker-net/minidocker-net/store"
)

// RunRequest is `run` (the network part; the process is started by the
// caller once the sandbox exists).
type RunRequest struct {
	Name       string
	Network    string // "" joins the default network
	IP         string
	Aliases    []string
	Hostname   string
	AddHosts   []string // NAME:IP or NAME:host-gateway
	GwPriority int
	Ports      []string
	Cmd        []string
	Detach     bool
	AutoRemove bool
}

// ConnectRequest is `network connect`.
type ConnectRequest struct {
	Network    string
	Sandbox    string
	IP         string
	Aliases    []string
	GwPriority int
}

// GatewayEndpoint returns the endpoint that carries a sandbox's default
// route, chosen as Docker 28 does: highest --gw-priority, then (internal
// networks never provide one) network name ascending.
func GatewayEndpoint(s *store.State, sb *store.Sandbox) *store.Endpoint {
	var best *store.Endpoint
	for _, ep := range sb.Endpoints {
		n := s.Networks[ep.Network]
		if n == nil || n.Internal {
			continue
		}
		if best == nil || ep.GwPriority > best.GwPriority || ep.GwPriority == best.GwPriority && ep.Network < best.Network {
			best = ep
		}
	}
	return best
}

func gatewayOf(s *store.State, sb *store.Sandbox) *nsnet.Gateway {
	ep := GatewayEndpoint(s, sb)
	if ep == nil {
		return nil
	}
	return &nsnet.Gateway{Via: s.Networks[ep.Network].Gateway, Link: ep.IfName}
}

// HostGateway is the address a sandbox reaches the host at
// (host.docker.internal): the gateway of its default route, else of its
// first network.
func HostGateway(s *store.State, sb *store.Sandbox) netip.Addr {
	if ep := GatewayEndpoint(s, sb); ep != nil {
		return s.Networks[ep.Network].Gateway
	}
	if len(sb.Endpoints) > 0 {
		if n := s.Networks[sb.Endpoints[0].Network]; n != nil {
			return n.Gateway
		}
	}
	return netip.Addr{}
}

func (t *tx) sandbox(name string) (*store.Sandbox, error) {
	sb, ok := t.new.Sandboxes[name]
	if !ok {
		return nil, &NotFoundError{Kind: "sandbox", Name: name}
	}
	return sb, nil
}

func (t *tx) network(name string) (*store.Network, error) {
	n, ok := t.new.Networks[name]
	if !ok {
		return nil, &NotFoundError{Kind: "network", Name: name}
	}
	return n, nil
}

// usedIPs returns the addresses taken on a network.
func usedIPs(s *store.State, network string) map[netip.Addr]bool {
	used := map[netip.Addr]bool{}
	for _, sb := range s.Sandboxes {
		if ep := sb.Endpoint(network); ep != nil {
			used[ep.IP] = true
		}
	}
	return used
}

// newEndpoint allocates an endpoint on a network for a sandbox.
func (t *tx) newEndpoint(sb *store.Sandbox, n *store.Network, ip string, aliases []string, prio int) (*store.Endpoint, error) {
	if sb.Endpoint(n.Name) != nil {
		return nil, fmt.Errorf("endpoint with name %s already exists in network %s", sb.Name, n.Name)
	}
	if n.Default && len(aliases) > 0 {
		return nil, errors.New("network-scoped alias is supported only for containers in user defined networks")
	}
	for _, a := range aliases {
		if err := ValidateName("alias", a); err != nil {
			return nil, err
		}
	}
	pool := ipam.Pool{Subnet: n.Subnet, Range: n.IPRange, Gateway: n.Gateway}
	used := usedIPs(t.new, n.Name)
	ep := &store.Endpoint{ID: NewID(), Network: n.Name, NetworkID: n.ID, Aliases: aliases, GwPriority: prio}
	if ip != "" {
		if n.Default {
			return nil, errors.New("user specified IP address is supported on user defined networks only")
		}
		if !n.UserSubnet {
			return nil, errors.New("user specified IP address is supported only when connecting to networks with user configured subnets")
		}
		a, err := ipam.ParseAddr("IP address", ip)
		if err != nil {
			return nil, err
		}
		if err := pool.Check(a, used); err != nil {
			return nil, err
		}
		ep.IP, ep.StaticIP = a, true
	} else {
		a, err := pool.Next(used)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
		ep.IP = a
	}
	ep.MAC = bridge.MACFor(ep.IP)
	ep.IfName = nextIfName(sb)
	veths := map[string]bool{}
	for _, o := range t.new.Sandboxes {
		for _, e := range o.Endpoints {
			veths[e.HostVeth] = true
		}
	}
	ep.HostVeth = vethName(ep.ID, func(v string) bool { return veths[v] || linkExists(v) })
	return ep, nil
}

// nextIfName returns the lowest free ethN inside a sandbox, as Docker does.
func nextIfName(sb *store.Sandbox) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("eth%d", i)
		if !slices.ContainsFunc(sb.Endpoints, func(e *store.Endpoint) bool { return e.IfName == name }) {
			return name
		}
	}
}

// hostMAC derives the host end's MAC from the endpoint ID (06: is locally
// administered unicast), so recreating a veth, in a rollback or a restore,
// gives back the same interface rather than a random new address.
func hostMAC(epID string) string {
	return "06:" + epID[0:2] + ":" + epID[2:4] + ":" + epID[4:6] + ":" + epID[6:8] + ":" + epID[8:10]
}

func endpointSteps(sb *store.Sandbox, ep *store.Endpoint, n *store.Network) []plan.Step {
	return []plan.Step{
		&nsnet.Veth{Host: ep.HostVeth, HostMAC: hostMAC(ep.ID), Peer: ep.IfName, Netns: sb.Name, MAC: ep.MAC, MTU: n.MTU, Bridge: n.Bridge,
			Alias: "minidocker-net sandbox " + sb.Name + " " + ep.IfName + " (" + n.Name + ")"},
		&nsnet.Addr{Netns: sb.Name, Link: ep.IfName, CIDR: netip.PrefixFrom(ep.IP, n.Subnet.Bits())},
		&nsnet.Up{Netns: sb.Name, Link: ep.IfName},
	}
}

// releasingVeths turns the veth deletions of a whole sandbox's teardown
// into releases: its namespace goes last and takes the pairs with it.
func releasingVeths(teardown []plan.Step) []plan.Step {
	for i, st := range teardown {
		if r, ok := st.(plan.Reverse); ok {
			if v, ok := r.Inner.(*nsnet.Veth); ok {
				teardown[i] = &nsnet.Release{Veth: *v}
			}
		}
	}
	return teardown
}

// sandboxSteps builds a sandbox as it is in state s: namespace, /etc files,
// interfaces, default route. Removing it runs these reversed.
func (t *tx) sandboxSteps(s *store.State, sb *store.Sandbox) ([]plan.Step, error) {
	if sb.Mode == store.ModeHost {
		return nil, nil
	}
	files, err := t.etcFiles(s, sb)
	if err != nil {
		return nil, err
	}
	steps := []plan.Step{&nsnet.Netns{Name: sb.Name}, &etcfiles.MakeDir{Sandbox: sb.Name}}
	for _, f := range files {
		f.New = true
		steps = append(steps, f)
	}
	for _, ep := range sb.Endpoints {
		steps = append(steps, endpointSteps(sb, ep, s.Networks[ep.Network])...)
	}
	if gw := gatewayOf(s, sb); gw != nil {
		steps = append(steps, &nsnet.DefaultRoute{Netns: sb.Name, To: gw})
	}
	return steps, nil
}

func parseAddHost(s string) (store.HostEntry, error) {
	name, ip, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return store.HostEntry{}, fmt.Errorf("invalid argument %q for --add-host: expected NAME:IP or NAME:host-gateway", s)
	}
	if err := ValidateHostname(name); err != nil {
		return store.HostEntry{}, fmt.Errorf("invalid --add-host %q: %w", s, err)
	}
	if ip == "host-gateway" {
		return store.HostEntry{Name: name}, nil
	}
	a, err := ipam.ParseAddr("--add-host address", ip)
	if err != nil {
		return store.HostEntry{}, err
	}
	return store.HostEntry{Name: name, IP: a}, nil
}

var adjectives = []string{"brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lively", "merry", "nifty", "quirky", "sharp", "tender", "vivid", "witty"}
var scientists = []string{"curie", "dijkstra", "hopper", "lamport", "lovelace", "noether", "perlman", "ritchie", "shannon", "thompson", "turing", "wozniak"}

// generatedName picks a free Docker-style name.
func generatedName(s *store.State) string {
	id := NewID()
	for i := 0; ; i++ {
		a := adjectives[int(id[i%len(id)])%len(adjectives)]
		b := scientists[int(id[(i+7)%len(id)])%len(scientists)]
		name := a + "_" + b
		if i > 30 {
			name += "_" + id[:4]
		}
		if _, taken := s.Sandboxes[name]; !taken && !nsnet.Exists(name) {
			return name
		}
	}
}

// CreateSandbox is the network half of `run`: it builds the sandbox.
func (e *Engine) CreateSandbox(req RunRequest) (*store.Sandbox, error) {
	var sb *store.Sandbox
	title := "run " + req.Name
	err := e.mutate(title, func(t *tx) error {
		var err error
		sb, err = t.createSandbox(req)
		return err
	})
	return sb, err
}

func (t *tx) createSandbox(req RunRequest) (*store.Sandbox, error) {
	name := req.Name
	if name == "" {
		name = generatedName(t.new)
	}
	if err := ValidateName("sandbox", name); err != nil {
		return nil, err
	}
	if o, ok := t.new.Sandboxes[name]; ok {
		return nil, fmt.Errorf("the sandbox name %q is already in use by sandbox %s: remove it ('minidocker-net rm %s') to reuse the name", name, o.ID[:12], name)
	}
	id := NewID()
	sb := &store.Sandbox{ID: id, Name: name, Hostname: id[:12], Created: time.Now().UTC(), Cmd: req.Cmd, Detached: req.Detach, AutoRemove: req.AutoRemove}
	if req.Hostname != "" {
		if err := ValidateHostname(req.Hostname); err != nil {
			return nil, err
		}
		sb.Hostname = req.Hostname
	}
	for _, h := range req.AddHosts {
		he, err := parseAddHost(h)
		if err != nil {
			return nil, err
		}
		sb.ExtraHosts = append(sb.ExtraHosts, he)
	}
	specs, err := parseSpecs(req.Ports, portspec.Parse)
	if err != nil {
		return nil, err
	}
	switch req.Network {
	case HostNetwork:
		sb.Mode = store.ModeHost
		if req.IP != "" || len(req.Aliases) > 0 {
			return nil, errors.New("--ip and --network-alias need a network: a sandbox on the host network has the host's addresses")
		}
		if len(specs) > 0 {
			return nil, errors.New("published ports are discarded when using host network mode: a program in the sandbox listens on the host's ports directly")
		}
	case NoneNetwork:
		sb.Mode = store.ModeNone
		if req.IP != "" || len(req.Aliases) > 0 || len(specs) > 0 {
			return nil, errors.New("--ip, --network-alias and -p need a network: a sandbox on network none has loopback only")
		}
	default:
		sb.Mode = store.ModeBridge
	}
	if sb.Mode != store.ModeHost && nsnet.Exists(name) {
		return nil, fmt.Errorf("a network namespace named %s already exists and is not a minidocker-net sandbox: choose another name", name)
	}
	if sb.Mode == store.ModeBridge {
		netName := req.Network
		if netName == "" || netName == DefaultNetwork {
			netName = DefaultNetwork
			if err := t.ensureDefault(); err != nil {
				return nil, err
			}
		}
		n, err := t.network(netName)
		if err != nil {
			return nil, err
		}
		ep, err := t.newEndpoint(sb, n, req.IP, req.Aliases, req.GwPriority)
		if err != nil {
			return nil, err
		}
		sb.Endpoints = append(sb.Endpoints, ep)
	}
	t.new.Sandboxes[name] = sb
	if len(specs) > 0 {
		if err := t.publish(sb, specs); err != nil {
			return nil, err
		}
	}
	steps, err := t.sandboxSteps(t.new, sb)
	if err != nil {
		return nil, err
	}
	t.setup = append(t.setup, steps...)
	return sb, t.syncHosts(name)
}

// RemoveSandbox is `rm` for one sandbox; force ends its processes first.
func (e *Engine) RemoveSandbox(name string, force bool) error {
	return e.mutate("rm "+name, func(t *tx) error { return t.removeSandbox(name, force) })
}

func (t *tx) removeSandbox(name string, force bool) error {
	sb, err := t.sandbox(name)
	if err != nil {
		return err
	}
	running, err := Running(sb)
	if err != nil {
		return err
	}
	if running && !force {
		return fmt.Errorf("cannot remove sandbox %s: it has running processes: stop them or use rm -f", name)
	}
	if running && !t.e.opts.DryRun {
		if err := Stop(sb); err != nil {
			return err
		}
	}
	steps, err := t.sandboxSteps(t.old, t.old.Sandboxes[name])
	if err != nil {
		return err
	}
	t.flushPorts(sb.Ports)
	delete(t.new.Sandboxes, name)
	t.teardown = append(t.teardown, releasingVeths(plan.Reversed(steps))...)
	if err := t.syncHosts(name); err != nil {
		return err
	}
	if !t.e.opts.DryRun {
		_ = os.Remove(t.e.opts.Paths.LogFile(name))
	}
	return nil
}

// Connect is `network connect`.
func (e *Engine) Connect(req ConnectRequest) error {
	return e.mutate("network connect "+req.Network+" "+req.Sandbox, func(t *tx) error {
		sb, err := t.sandbox(req.Sandbox)
		if err != nil {
			return err
		}
		if Predefined(req.Network) && req.Network != DefaultNetwork {
			return fmt.Errorf("cannot connect sandbox %s to network %s: the host and none networks are chosen when a sandbox is created", sb.Name, req.Network)
		}
		switch sb.Mode {
		case store.ModeHost:
			return fmt.Errorf("sandbox %s shares the host's network namespace and cannot be connected to any other network", sb.Name)
		case store.ModeNone:
			return fmt.Errorf("sandbox %s cannot be connected to multiple networks with one of the networks in private (none) mode", sb.Name)
		}
		if req.Network == DefaultNetwork {
			if err := t.ensureDefault(); err != nil {
				return err
			}
		}
		n, err := t.network(req.Network)
		if err != nil {
			return err
		}
		oldGW := gatewayOf(t.new, sb)
		ep, err := t.newEndpoint(sb, n, req.IP, req.Aliases, req.GwPriority)
		if err != nil {
			return err
		}
		sb.Endpoints = append(sb.Endpoints, ep)
		t.setup = append(t.setup, endpointSteps(sb, ep, n)...)
		if newGW := gatewayOf(t.new, sb); !sameGateway(oldGW, newGW) {
			t.setup = append(t.setup, &nsnet.DefaultRoute{Netns: sb.Name, To: newGW, From: oldGW})
			t.flushPorts(sb.Ports)
		}
		return t.syncHosts(sb.Name)
	})
}

func sameGateway(a, b *nsnet.Gateway) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Disconnect is `network disconnect`.
func (e *Engine) Disconnect(network, name string) error {
	return e.mutate("network disconnect "+network+" "+name, func(t *tx) error {
		sb, err := t.sandbox(name)
		if err != nil {
			return err
		}
		if sb.Mode == store.ModeHost {
			return fmt.Errorf("cannot disconnect sandbox %s from the host network: it was created in host network mode", name)
		}
		if _, err := t.network(network); err != nil {
			return err
		}
		ep := sb.Endpoint(network)
		if ep == nil {
			return fmt.Errorf("sandbox %s is not connected to network %s", name, network)
		}
		if len(sb.Endpoints) == 1 {
			running, err := Running(sb)
			if err != nil {
				return err
			}
			if running {
				return fmt.Errorf("cannot disconnect sandbox %s from %s, its last network, while it has running processes: they would lose every connection; stop them first or rm -f the sandbox", name, network)
			}
		}
		oldGW := gatewayOf(t.new, sb)
		n := t.new.Networks[network]
		sb.Endpoints = slices.DeleteFunc(sb.Endpoints, func(e *store.Endpoint) bool { return e.Network == network })
		if newGW := gatewayOf(t.new, sb); !sameGateway(oldGW, newGW) {
			t.teardown = append(t.teardown, &nsnet.DefaultRoute{Netns: sb.Name, To: newGW, From: oldGW})
			t.flushPorts(sb.Ports)
		}
		if len(sb.Ports) > 0 && GatewayEndpoint(t.new, sb) == nil {
			return fmt.Errorf("cannot disconnect sandbox %s from %s: its published ports need a network that reaches the host; unexpose them first", name, network)
		}
		t.teardown = append(t.teardown, plan.Reversed(endpointSteps(sb, ep, n))...)
		return t.syncHosts(name)
	})
}

// syncHosts plans the /etc/hosts changes of every sandbox that shares a
// network with the named one, before or after the command, and of the
// named one itself if it exists before and after. A sandbox created or
// removed by the command has its own files in its setup or teardown.
// Every such neighbour gains or loses a line, so only the new content is
// computed, from an index of the networks' members built once.
func (t *tx) syncHosts(name string) error {
	nets := map[string]bool{}
	for _, s := range []*store.State{t.old, t.new} {
		if sb := s.Sandboxes[name]; sb != nil {
			for _, ep := range sb.Endpoints {
				nets[ep.Network] = true
			}
		}
	}
	affected := map[string]bool{}
	if t.old.Sandboxes[name] != nil && t.new.Sandboxes[name] != nil {
		affected[name] = true
	}
	oldIdx, newIdx := indexMembers(t.old), indexMembers(t.new)
	for n := range nets {
		for _, idx := range []members{oldIdx, newIdx} {
			for _, m := range idx[n] {
				if m.sb.Name != name && t.old.Sandboxes[m.sb.Name] != nil && t.new.Sandboxes[m.sb.Name] != nil {
					affected[m.sb.Name] = true
				}
			}
		}
	}
	names := make([]string, 0, len(affected))
	for n := range affected {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.files = append(t.files, &etcfiles.File{Path: filepath.Join(etcfiles.Dir(n), "hosts"), Content: hostsFile(t.new, newIdx, t.new.Sandboxes[n])})
	}
	return nil
}

// member is a sandbox on a network and the hosts line that names it there.
type member struct {
	sb   *store.Sandbox
	line string
}

// members indexes each network's sandboxes, sorted by name, with their
// hosts lines formatted once for all the files that list them.
type members map[string][]member

func indexMembers(s *store.State) members {
	idx := members{}
	for _, name := range s.SandboxNames() {
		sb := s.Sandboxes[name]
		for _, ep := range sb.Endpoints {
			e := etcfiles.Entry{IP: ep.IP, Names: append([]string{sb.Name}, ep.Aliases...)}
			idx[ep.Network] = append(idx[ep.Network], member{sb: sb, line: e.Line()})
		}
	}
	return idx
}

// HostsFile renders a sandbox's /etc/hosts from a state.
func HostsFile(s *store.State, sb *store.Sandbox) string {
	return hostsFile(s, indexMembers(s), sb)
}

func hostsFile(s *store.State, idx members, sb *store.Sandbox) string {
	gw := HostGateway(s, sb)
	var extra []etcfiles.Entry
	for _, h := range sb.ExtraHosts {
		ip := h.IP
		if !ip.IsValid() {
			ip = gw
		}
		if ip.IsValid() {
			extra = append(extra, etcfiles.Entry{IP: ip, Names: []string{h.Name}})
		}
	}
	var self []etcfiles.Entry
	var peers []string
	for _, ep := range sb.Endpoints {
		names := []string{sb.Hostname}
		if sb.Name != sb.Hostname {
			names = append(names, sb.Name)
		}
		for _, a := range ep.Aliases {
			if !slices.Contains(names, a) {
				names = append(names, a)
			}
		}
		self = append(self, etcfiles.Entry{IP: ep.IP, Names: names})
	}
	nets := make([]string, 0, len(sb.Endpoints))
	for _, ep := range sb.Endpoints {
		nets = append(nets, ep.Network)
	}
	sort.Strings(nets)
	for _, nn := range nets {
		n := s.Networks[nn]
		if n == nil || n.Default {
			continue // the default network gives no name resolution, as on Docker
		}
		for _, m := range idx[nn] {
			if m.sb.Name != sb.Name {
				peers = append(peers, m.line)
			}
		}
	}
	return etcfiles.Hosts(extra, gw, self, peers)
}

// resolvConf reads the host's resolver configuration once per command.
func (t *tx) resolvConf() (string, error) {
	src := etcfiles.HostResolvConf()
	b, err := os.ReadFile(src)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", src, err)
	}
	return etcfiles.ResolvConf(b, src), nil
}

// etcFiles returns the steps that write a sandbox's three /etc files.
func (t *tx) etcFiles(s *store.State, sb *store.Sandbox) ([]*etcfiles.File, error) {
	resolv, err := t.resolvConf()
	if err != nil {
		return nil, err
	}
	dir := etcfiles.Dir(sb.Name)
	return []*etcfiles.File{
		{Path: filepath.Join(dir, "hosts"), Content: HostsFile(s, sb)},
		{Path: filepath.Join(dir, "resolv.conf"), Content: resolv},
		{Path: filepath.Join(dir, "hostname"), Content: sb.Hostname + "\n"},
	}, nil
}

// resyncEtc rewrites every sandbox's /etc files from a state, after a crash
// recovery restored the records.
func (e *Engine) resyncEtc(s *store.State) error {
	t := &tx{e: e, old: s, new: s}
	for _, name := range s.SandboxNames() {
		sb := s.Sandboxes[name]
		if sb.Mode == store.ModeHost || !nsnet.Exists(name) {
			continue
		}
		files, err := t.etcFiles(s, sb)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(etcfiles.Dir(name), 0o755); err != nil {
			return err
		}
		for _, f := range files {
			if err := f.Apply(nil); err != nil {
				return err
			}
		}
	}
	return nil
}
