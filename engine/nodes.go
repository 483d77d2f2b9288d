package engine

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/store"
)

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
