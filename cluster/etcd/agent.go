package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/store"
)

// Agent is a host's part of the cluster that must run all the time; it
// lives in the host's one long-running process, beside the embedded DNS.
// It keeps the host's lease alive (and, when the store lost it, grants a
// new one and writes again everything the host owns), watches every
// host's endpoints, and programs the remote ones into the tunnels of the
// overlay networks this host has a part of.
type Agent struct {
	cfg      cluster.Config
	onChange func() // the remote endpoints changed: the names to answer did

	mu     sync.Mutex
	lease  clientv3.LeaseID
	leased chan struct{} // closed once a lease is held
	eps    map[string]cluster.Endpoint
	local  *store.State

	prog    sync.Mutex // one programming of the kernel at a time
	lastErr string     // the run loop's last failure, logged once
	cancel  context.CancelFunc
	done    chan struct{}
}

// StartAgent starts a host's agent; onChange is called (on the agent's
// goroutine) when the remote endpoints changed.
func StartAgent(cfg cluster.Config, local *store.State, onChange func()) *Agent {
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{cfg: cfg, onChange: onChange, leased: make(chan struct{}), eps: map[string]cluster.Endpoint{}, local: local, cancel: cancel, done: make(chan struct{})}
	go a.run(ctx)
	return a
}

// Config is the configuration the agent runs with.
func (a *Agent) Config() cluster.Config { return a.cfg }

// Lease is the host's current lease, waiting (at most cluster.Timeout)
// for one while the agent has none (the store unreachable).
func (a *Agent) Lease() (int64, error) {
	a.mu.Lock()
	ch := a.leased
	a.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(cluster.Timeout):
		return 0, &cluster.UnreachableError{Store: a.cfg.Store, Err: errors.New("no lease granted")}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(a.lease), nil
}

// Stop ends the agent; with revoke, its lease goes at once and with it
// the host's key and endpoints (the host leaves).
func (a *Agent) Stop(revoke bool) {
	a.cancel()
	<-a.done
	if !revoke {
		return
	}
	a.mu.Lock()
	lease := a.lease
	a.mu.Unlock()
	if lease == 0 {
		return
	}
	c, err := Dial(a.cfg)
	if err != nil {
		return
	}
	defer c.Close()
	ctx, cancel := c.ctx()
	defer cancel()
	if _, err := c.c.Revoke(ctx, lease); err != nil {
		log.Printf("cluster: revoke the lease: %v", err)
	}
}

// Remote are the other hosts' endpoints on the overlay networks this host
// has a part of.
func (a *Agent) Remote() []cluster.Endpoint {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []cluster.Endpoint
	for _, e := range a.eps {
		if e.Host != a.cfg.Host && a.local != nil && a.local.Networks[e.Network] != nil && a.local.Networks[e.Network].ID == e.NetworkID {
			out = append(out, e)
		}
	}
	cluster.SortEndpoints(out)
	return out
}

// Update takes the host's new records and programs the tunnels of its
// overlay networks before it returns: a command's new network part knows
// every remote endpoint when the command ends.
func (a *Agent) Update(local *store.State) error {
	a.mu.Lock()
	fresh := false
	for name, n := range local.Networks {
		if n.Scope == store.ScopeGlobal && (a.local == nil || a.local.Networks[name] == nil) {
			fresh = true
		}
	}
	a.local = local
	a.mu.Unlock()
	if fresh {
		// A part just built here: read the store rather than trust a watch
		// that may lag behind it.
		if err := a.relist(); err != nil {
			log.Printf("cluster: %v", err)
		}
	}
	return a.program()
}

func (a *Agent) relist() error {
	c, err := Dial(a.cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	eps, _, err := list[cluster.Endpoint](c, cluster.EndpointsPrefix)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.eps = eps
	a.mu.Unlock()
	return nil
}

// program writes every local overlay network's remote endpoints into its
// tunnel, and removes those gone.
func (a *Agent) program() error {
	a.prog.Lock()
	defer a.prog.Unlock()
	a.mu.Lock()
	local := a.local
	byNet := map[string][]nsnet.Peer{}
	for _, e := range a.eps {
		if e.Host != a.cfg.Host {
			byNet[e.NetworkID] = append(byNet[e.NetworkID], nsnet.Peer{IP: e.IP, MAC: e.MAC, VTEP: e.VTEP})
		}
	}
	a.mu.Unlock()
	if local == nil {
		return nil
	}
	var errs []error
	for _, name := range local.NetworkNames() {
		n := local.Networks[name]
		if n.Scope != store.ScopeGlobal {
			continue
		}
		if _, err := nsnet.SetPeers(driver.OverlayNetns(n), driver.OverlayVxlan(n), byNet[n.ID]); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

// run is the agent's life: hold a lease and watch, and start again from a
// fresh lease and a full listing whenever either breaks.
func (a *Agent) run(ctx context.Context) {
	defer close(a.done)
	for ctx.Err() == nil {
		if err := a.session(ctx); err != nil && ctx.Err() == nil {
			// Once per kind of failure, not once a second while etcd is down.
			if err.Error() != a.lastErr {
				log.Printf("cluster: %v; trying again every second", err)
				a.lastErr = err.Error()
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// session is one lease's life. It resumes the lease it had when the
// store still holds it (etcd restores leases, with a fresh TTL, when it
// restarts: the host's keys are all there), else grants a new one and
// writes again what the host owns. While there is no session, commands
// asking for the lease wait.
func (a *Agent) session(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.mu.Lock()
			select {
			case <-a.leased:
				a.leased = make(chan struct{}) // until the next session holds one
			default:
			}
			a.mu.Unlock()
		}
	}()
	c, err := Dial(a.cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	a.mu.Lock()
	id := a.lease
	a.mu.Unlock()
	gctx, cancel := context.WithTimeout(ctx, cluster.Timeout)
	resumed := false
	if id != 0 {
		_, err := c.c.KeepAliveOnce(gctx, id)
		resumed = err == nil
		if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			cancel()
			return fmt.Errorf("renew the lease: %w", err)
		}
	}
	if !resumed {
		g, err := c.c.Grant(gctx, cluster.LeaseTTL)
		if err != nil {
			cancel()
			return fmt.Errorf("grant a lease: %w", err)
		}
		if id != 0 {
			log.Printf("cluster: lease %x is gone from the store; lease %x replaces it, and the host's keys are written again", id, g.ID)
		}
		id = g.ID
	}
	cancel()
	// Written again in any case: what the host owns is in the store.
	if err := a.announce(ctx, c, id); err != nil {
		return err
	}
	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	ka, err := c.c.KeepAlive(kctx, id)
	if err != nil {
		return fmt.Errorf("keep the lease alive: %w", err)
	}
	a.mu.Lock()
	a.lease = id
	select {
	case <-a.leased:
	default:
		close(a.leased)
	}
	a.mu.Unlock()
	if a.lastErr != "" {
		log.Printf("cluster: the store answers again (lease %x)", id)
	}
	a.lastErr = ""
	for ctx.Err() == nil {
		rev, err := a.list(ctx, c)
		if err != nil {
			return err
		}
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(kctx))
		wch := c.c.Watch(wctx, cluster.EndpointsPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		err = a.watch(ctx, ka, wch)
		wcancel()
		if !errors.Is(err, errRelist) {
			return err
		}
	}
	return nil
}

var errRelist = errors.New("relist")

// watch follows the endpoints until the lease or the watch breaks: a
// compacted or cancelled watch is listed again (errRelist), a lease whose
// keep-alive ended is granted again.
func (a *Agent) watch(ctx context.Context, ka <-chan *clientv3.LeaseKeepAliveResponse, wch clientv3.WatchChan) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ka:
			if !ok {
				return errors.New("the lease's keep-alive ended (the store restarted or is unreachable)")
			}
		case w, ok := <-wch:
			if !ok || w.Canceled || w.Err() != nil {
				if w.CompactRevision != 0 {
					log.Printf("cluster: watch compacted at %d: listing again", w.CompactRevision)
				}
				return errRelist
			}
			a.mu.Lock()
			for _, ev := range w.Events {
				k := string(ev.Kv.Key)
				if ev.Type == clientv3.EventTypeDelete {
					delete(a.eps, k)
					continue
				}
				var e cluster.Endpoint
				if json.Unmarshal(ev.Kv.Value, &e) == nil {
					a.eps[k] = e
				}
			}
			a.mu.Unlock()
			a.changed()
		}
	}
}

// list reads every endpoint and programs them; it returns the revision
// read, for the watch to start after.
func (a *Agent) list(ctx context.Context, c *Client) (int64, error) {
	eps, rev, err := list[cluster.Endpoint](c, cluster.EndpointsPrefix)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	a.eps = eps
	a.mu.Unlock()
	a.changed()
	return rev, nil
}

func (a *Agent) changed() {
	if err := a.program(); err != nil {
		log.Printf("cluster: %v", err)
	}
	if a.onChange != nil {
		a.onChange()
	}
}

// announce writes the host's key and, again, every endpoint it owns,
// under a lease: after the store lost the host's lease, nothing it owns
// is lost. An address another host took meanwhile is reported, never
// taken over.
func (a *Agent) announce(ctx context.Context, c *Client, lease clientv3.LeaseID) error {
	name, _ := os.Hostname()
	h, err := json.Marshal(cluster.Host{ID: a.cfg.Host, Name: name, Advertise: a.cfg.Advertise, Joined: time.Now().UTC()})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, cluster.Timeout)
	defer cancel()
	if _, err := c.c.Put(pctx, cluster.HostKey(a.cfg.Host), string(h), clientv3.WithLease(lease)); err != nil {
		return fmt.Errorf("announce the host: %w", err)
	}
	a.mu.Lock()
	local := a.local
	a.mu.Unlock()
	if local == nil {
		return nil
	}
	for _, e := range cluster.LocalEndpoints(local, a.cfg.Host, a.cfg.Advertise) {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		k := cluster.EndpointKey(e.NetworkID, e.IP)
		r, err := c.c.Txn(pctx).
			If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, string(b), clientv3.WithLease(lease))).
			Else(clientv3.OpGet(k)).Commit()
		if err != nil {
			return fmt.Errorf("write endpoint %s again: %w", k, err)
		}
		if r.Succeeded {
			continue
		}
		kvs := r.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 1 && string(kvs[0].Value) == string(b) {
			// Ours: move it onto the new lease, only if still ours.
			if _, err := c.c.Txn(pctx).If(clientv3.Compare(clientv3.Value(k), "=", string(b))).
				Then(clientv3.OpPut(k, string(b), clientv3.WithLease(lease))).Commit(); err != nil {
				return fmt.Errorf("write endpoint %s again: %w", k, err)
			}
			continue
		}
		log.Printf("cluster: address %s on %s was taken by another host while this one was away: sandbox %s keeps it locally, but the cluster does not route to it; remove and run it again", e.IP, e.Network, e.Sandbox)
	}
	return nil
}
