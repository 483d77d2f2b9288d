package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/store"
)

// Client is a connection to the cluster store.
type Client struct {
	cfg cluster.Config
	c   *clientv3.Client
}

// Dial connects (etcd's client connects lazily: the first request tells
// whether the store answers).
func Dial(cfg cluster.Config) (*Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints(),
		DialTimeout: cluster.Timeout,
		Logger:      zap.NewNop(),
		// The host's process keeps one connection for as long as it runs:
		// after etcd comes back it reconnects within a second, not after
		// gRPC's default backoff of up to two minutes.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return nil, &cluster.UnreachableError{Store: cfg.Store, Err: err}
	}
	return &Client{cfg: cfg, c: c}, nil
}

// Close ends the connection.
func (c *Client) Close() { _ = c.c.Close() }

// Config is the configuration dialed.
func (c *Client) Config() cluster.Config { return c.cfg }

// ctx is a request's deadline.
func (c *Client) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cluster.Timeout)
}

func (c *Client) wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "connection refused") {
		return &cluster.UnreachableError{Store: c.cfg.Store, Err: err}
	}
	return fmt.Errorf("the cluster store %s: %w", c.cfg.Store, err)
}

// list returns the values under a prefix, decoded, and the revision read.
func list[T any](c *Client, prefix string) (map[string]T, int64, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	r, err := c.c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, c.wrap(err)
	}
	out := map[string]T{}
	for _, kv := range r.Kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, 0, fmt.Errorf("the cluster store: %s: %w", kv.Key, err)
		}
		out[string(kv.Key)] = v
	}
	return out, r.Header.Revision, nil
}

// Networks are the overlay networks, by name.
func (c *Client) Networks() (map[string]*store.Network, error) {
	kvs, _, err := list[*store.Network](c, cluster.NetworksPrefix)
	if err != nil {
		return nil, err
	}
	out := map[string]*store.Network{}
	for _, n := range kvs {
		out[n.Name] = n
	}
	return out, nil
}

// Hosts are the hosts present, by ID.
func (c *Client) Hosts() (map[string]cluster.Host, error) {
	kvs, _, err := list[cluster.Host](c, cluster.HostsPrefix)
	if err != nil {
		return nil, err
	}
	out := map[string]cluster.Host{}
	for _, h := range kvs {
		out[h.ID] = h
	}
	return out, nil
}

// Endpoints are the endpoints of one network (netID), or of all ("").
func (c *Client) Endpoints(netID string) ([]cluster.Endpoint, int64, error) {
	prefix := cluster.EndpointsPrefix
	if netID != "" {
		prefix = cluster.EndpointsKey(netID)
	}
	kvs, rev, err := list[cluster.Endpoint](c, prefix)
	if err != nil {
		return nil, 0, err
	}
	return sortedEndpoints(kvs), rev, nil
}

func sortedEndpoints(kvs map[string]cluster.Endpoint) []cluster.Endpoint {
	out := make([]cluster.Endpoint, 0, len(kvs))
	for _, e := range kvs {
		out = append(out, e)
	}
	cluster.SortEndpoints(out)
	return out
}

// Used are the VNIs and subnets taken.
func (c *Client) Used() (vnis map[int]bool, subnets []netip.Prefix, err error) {
	ctx, cancel := c.ctx()
	defer cancel()
	vnis = map[int]bool{}
	r, err := c.c.Get(ctx, cluster.VNIPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, nil, c.wrap(err)
	}
	for _, kv := range r.Kvs {
		if n, err := cluster.ParseVNIKey(string(kv.Key)); err == nil {
			vnis[n] = true
		}
	}
	r, err = c.c.Get(ctx, cluster.SubnetPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, nil, c.wrap(err)
	}
	for _, kv := range r.Kvs {
		if p, err := cluster.ParseSubnetKey(string(kv.Key)); err == nil {
			subnets = append(subnets, p)
		}
	}
	return vnis, subnets, nil
}

// DeleteAll removes every key of ours: the last host's reset.
func (c *Client) DeleteAll() error {
	ctx, cancel := c.ctx()
	defer cancel()
	_, err := c.c.Delete(ctx, cluster.Prefix, clientv3.WithPrefix())
	return c.wrap(err)
}

// DeleteHost removes a host's key and its endpoints (found by their Host).
func (c *Client) DeleteHost(id string) error {
	eps, _, err := c.Endpoints("")
	if err != nil {
		return err
	}
	ctx, cancel := c.ctx()
	defer cancel()
	ops := []clientv3.Op{clientv3.OpDelete(cluster.HostKey(id))}
	for _, e := range eps {
		if e.Host == id {
			ops = append(ops, clientv3.OpDelete(cluster.EndpointKey(e.NetworkID, e.IP)))
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), 100) // etcd's --max-txn-ops is 128
		if _, err := c.c.Txn(ctx).Then(ops[:n]...).Commit(); err != nil {
			return c.wrap(err)
		}
		ops = ops[n:]
	}
	return nil
}

// Claim is cluster.Writer's: the keys are written in one transaction if
// none exists yet; otherwise, if they hold these values already, the
// claim stands, else the first key that exists is returned.
func (c *Client) Claim(kvs []cluster.KV, lease int64) (string, error) {
	cx, cancel := c.ctx()
	defer cancel()
	var ifs []clientv3.Cmp
	var puts []clientv3.Op
	for _, kv := range kvs {
		ifs = append(ifs, clientv3.Compare(clientv3.CreateRevision(kv.Key), "=", 0))
		if lease != 0 {
			puts = append(puts, clientv3.OpPut(kv.Key, kv.Value, clientv3.WithLease(clientv3.LeaseID(lease))))
		} else {
			puts = append(puts, clientv3.OpPut(kv.Key, kv.Value))
		}
	}
	r, err := c.c.Txn(cx).If(ifs...).Then(puts...).Commit()
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) || strings.Contains(err.Error(), "requested lease not found") {
			return "", cluster.ErrLeaseLost
		}
		return "", c.wrap(err)
	}
	if r.Succeeded {
		return "", nil
	}
	if held, err := c.Held(kvs); err != nil || held {
		return "", err
	}
	for _, kv := range kvs {
		if r, err := c.c.Get(cx, kv.Key, clientv3.WithCountOnly()); err == nil && r.Count > 0 {
			return kv.Key, nil
		}
	}
	return kvs[0].Key, nil
}

// Held says whether every key holds its value.
func (c *Client) Held(kvs []cluster.KV) (bool, error) {
	cx, cancel := c.ctx()
	defer cancel()
	var ops []clientv3.Op
	for _, kv := range kvs {
		ops = append(ops, clientv3.OpGet(kv.Key))
	}
	r, err := c.c.Txn(cx).Then(ops...).Commit()
	if err != nil {
		return false, c.wrap(err)
	}
	for i, resp := range r.Responses {
		got := resp.GetResponseRange().Kvs
		if len(got) != 1 || string(got[0].Value) != kvs[i].Value {
			return false, nil
		}
	}
	return true, nil
}

// Release deletes the keys that still hold these values.
func (c *Client) Release(kvs []cluster.KV) error {
	cx, cancel := c.ctx()
	defer cancel()
	var errs []error
	for _, kv := range kvs {
		_, err := c.c.Txn(cx).If(clientv3.Compare(clientv3.Value(kv.Key), "=", kv.Value)).Then(clientv3.OpDelete(kv.Key)).Commit()
		errs = append(errs, c.wrap(err))
	}
	return errors.Join(errs...)
}

// ResetHost is a host's reset in the store: its own keys go, and every key
// of ours when no other host is left.
func (c *Client) ResetHost(id string) error {
	if err := c.DeleteHost(id); err != nil {
		return err
	}
	hosts, err := c.Hosts()
	if err != nil || len(hosts) > 0 {
		return err
	}
	return c.DeleteAll()
}
