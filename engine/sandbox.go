package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/ipam"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// sandbox resolves a sandbox name, ID or unique ID prefix.
func (t *tx) sandbox(ref string) (*store.Sandbox, error) { return model.FindSandbox(t.new, ref) }

// networkName resolves a network name, ID or unique ID prefix to its
// name; the pre-defined networks resolve even without a record.
//
// A network this host has no record of may be an overlay network: the
// cluster store is asked.
func (t *tx) networkName(ref string) (string, error) {
	name, err := model.NetworkName(t.new, ref)
	var nf *model.NotFoundError
	if errors.As(err, &nf) {
		if g, gerr := t.globalName(ref); gerr == nil || !errors.As(gerr, &nf) {
			return g, gerr
		}
	}
	return name, err
}

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
	if !ok && t.global[name] != nil {
		return t.adopt(name)
	}
	if !ok {
		return nil, &model.NotFoundError{Kind: "network", Name: ref}
	}
	return n, nil
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
	if hasIPv6(sb) {
		steps = append(steps, loopback6(sb))
	}
	if gw := gatewayOf(s, sb, false); gw != nil {
		steps = append(steps, &nsnet.DefaultRoute{Netns: sb.Name, To: gw})
	}
	if gw := gatewayOf(s, sb, true); gw != nil {
		steps = append(steps, &nsnet.DefaultRoute{Netns: sb.Name, To: gw, IPv6: true})
	}
	if model.DNSServed(s, sb) {
		steps = append(steps, t.dnsSteps(sb)...)
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

// dnsSteps wire a sandbox to the embedded DNS: the nat rules inside its
// namespace that bring 127.0.0.11:53 to the resolver's port there (the
// resolver opens its sockets when the command has committed).
func (t *tx) dnsSteps(sb *store.Sandbox) []plan.Step {
	return []plan.Step{t.fw.Resolver(sb.Name, model.ResolverIP, model.DNSPort(sb))}
}
