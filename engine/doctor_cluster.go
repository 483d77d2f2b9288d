package engine

import (
	"fmt"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/store"
)

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
