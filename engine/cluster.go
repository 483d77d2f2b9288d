package engine

import (
	"errors"
	"fmt"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/hostd"
	"github.com/minidocker-net/minidocker-net/store"
)

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
