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

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/ipam"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

func gatewayOf(s *store.State, sb *store.Sandbox) *nsnet.Gateway {
	ep := model.GatewayEndpoint(s, sb)
	if ep == nil {
		return nil
	}
	return &nsnet.Gateway{Via: s.Networks[ep.Network].Gateway, Link: ep.IfName}
}

// sandbox resolves a sandbox name, ID or unique ID prefix.
func (t *tx) sandbox(ref string) (*store.Sandbox, error) { return model.FindSandbox(t.new, ref) }

// networkName resolves a network name, ID or unique ID prefix to its
// name; the pre-defined networks resolve even without a record.
func (t *tx) networkName(ref string) (string, error) { return model.NetworkName(t.new, ref) }

// network resolves a network reference to its record, creating the
// default network's on its first use.
func (t *tx) network(ref string) (*store.Network, error) {
	name, err := t.networkName(ref)
	if err != nil {
		return nil, err
	}
	if name == model.DefaultNetwork {
		if err := t.ensureDefault(); err != nil {
			return nil, err
		}
	}
	n, ok := t.new.Networks[name]
	if !ok {
		return nil, &model.NotFoundError{Kind: "network", Name: ref}
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
	ep.HostVeth = vethName(ep.ID, func(v string) bool { return veths[v] || t.e.kernel.LinkExists(v) })
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

// endpointSteps attach a sandbox to a network, its driver's way.
func endpointSteps(sb *store.Sandbox, ep *store.Endpoint, n *store.Network) []plan.Step {
	return driver.Of(n).EndpointSteps(sb, ep, n)
}

// releasing turns the undoing of steps that a whole sandbox's teardown
// need not wait for into their releases (a veth's deletion into taking it
// off its bridge): the namespace goes last and takes them with it.
func releasing(teardown []plan.Step) []plan.Step {
	for i, st := range teardown {
		if r, ok := st.(plan.Reverse); ok {
			if v, ok := r.Inner.(plan.Releaser); ok {
				teardown[i] = v.Released()
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
func (t *tx) generatedName() string {
	s := t.new
	id := NewID()
	for i := 0; ; i++ {
		a := adjectives[int(id[i%len(id)])%len(adjectives)]
		b := scientists[int(id[(i+7)%len(id)])%len(scientists)]
		name := a + "_" + b
		if i > 30 {
			name += "_" + id[:4]
		}
		if _, taken := s.Sandboxes[name]; !taken && !t.e.kernel.NetnsExists(name) {
			return name
		}
	}
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
	oldIdx, newIdx := model.IndexMembers(t.old), model.IndexMembers(t.new)
	for n := range nets {
		for _, idx := range []model.Members{oldIdx, newIdx} {
			for _, m := range idx[n] {
				if m.Sandbox.Name != name && t.old.Sandboxes[m.Sandbox.Name] != nil && t.new.Sandboxes[m.Sandbox.Name] != nil {
					affected[m.Sandbox.Name] = true
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
		t.files = append(t.files, &etcfiles.File{Path: filepath.Join(etcfiles.Dir(n), "hosts"), Content: model.HostsFileFrom(t.new, newIdx, t.new.Sandboxes[n])})
	}
	return nil
}

// resolvConf derives a sandbox's resolv.conf from the host's.
func (t *tx) resolvConf() (string, error) {
	b, src, err := t.e.kernel.ResolvConf()
	if err != nil {
		return "", err
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
		{Path: filepath.Join(dir, "hosts"), Content: model.HostsFile(s, sb)},
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
