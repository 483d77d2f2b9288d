package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/minidocker-net/minidocker-net/store"
)

// The key layout, under one prefix of ours. Networks, VNIs and subnets
// stay until the network is removed; hosts and endpoints are under their
// host's lease, so they vanish when the host dies.
const (
	Prefix          = "/minidocker-net/"
	networksPrefix  = Prefix + "networks/"  // NAME -> the network's record
	vniPrefix       = Prefix + "vni/"       // N -> network ID
	subnetPrefix    = Prefix + "subnets/"   // 10.0.0.0-24 -> network ID
	hostsPrefix     = Prefix + "hosts/"     // HOST ID -> Host
	endpointsPrefix = Prefix + "endpoints/" // NETWORK ID/IP -> Endpoint
)

// NetworkKey, VNIKey, SubnetKey, HostKey and EndpointKey name one record.
func NetworkKey(name string) string                  { return networksPrefix + name }
func VNIKey(vni int) string                          { return vniPrefix + strconv.Itoa(vni) }
func SubnetKey(p netip.Prefix) string                { return subnetPrefix + strings.Replace(p.String(), "/", "-", 1) }
func HostKey(id string) string                       { return hostsPrefix + id }
func EndpointsKey(netID string) string               { return endpointsPrefix + netID + "/" }
func EndpointKey(netID string, ip netip.Addr) string { return EndpointsKey(netID) + ip.String() }

// Host is one host of the cluster, present while its lease lives.
type Host struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"` // its hostname
	Advertise netip.Addr `json:"advertise"`
	Joined    time.Time  `json:"joined"`
}

// Endpoint is one sandbox's endpoint on an overlay network, as every host
// sees it: what the others program into their tunnels and answer names
// with. Its key is its address: writing it is the address's allocation.
type Endpoint struct {
	Host      string     `json:"host"`
	VTEP      netip.Addr `json:"vtep"` // the host's advertise address
	Network   string     `json:"network"`
	NetworkID string     `json:"network_id"`
	ID        string     `json:"id"`
	Sandbox   string     `json:"sandbox"`
	SandboxID string     `json:"sandbox_id"`
	Hostname  string     `json:"hostname"`
	IP        netip.Addr `json:"ip"`
	MAC       string     `json:"mac"`
	Aliases   []string   `json:"aliases,omitempty"`
}

// Timeout bounds every request to the store: a command that needs an
// unreachable store fails within it, having changed nothing.
const Timeout = 3 * time.Second

// UnreachableError says the store did not answer.
type UnreachableError struct {
	Store string
	Err   error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("the cluster store %s does not answer (%v): check that etcd runs and that --cluster-store names it; local networks keep working", e.Store, e.Err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// Client is a connection to the cluster store.
type Client struct {
	cfg Config
	c   *clientv3.Client
}

// Dial connects (etcd's client connects lazily: the first request tells
// whether the store answers).
func Dial(cfg Config) (*Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints(),
		DialTimeout: Timeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, &UnreachableError{Store: cfg.Store, Err: err}
	}
	return &Client{cfg: cfg, c: c}, nil
}

// Close ends the connection.
func (c *Client) Close() { _ = c.c.Close() }

// Config is the configuration dialed.
func (c *Client) Config() Config { return c.cfg }

// ctx is a request's deadline.
func (c *Client) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), Timeout)
}

func (c *Client) wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "connection refused") {
		return &UnreachableError{Store: c.cfg.Store, Err: err}
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
	kvs, _, err := list[*store.Network](c, networksPrefix)
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
func (c *Client) Hosts() (map[string]Host, error) {
	kvs, _, err := list[Host](c, hostsPrefix)
	if err != nil {
		return nil, err
	}
	out := map[string]Host{}
	for _, h := range kvs {
		out[h.ID] = h
	}
	return out, nil
}

// Endpoints are the endpoints of one network (netID), or of all ("").
func (c *Client) Endpoints(netID string) ([]Endpoint, int64, error) {
	prefix := endpointsPrefix
	if netID != "" {
		prefix = EndpointsKey(netID)
	}
	kvs, rev, err := list[Endpoint](c, prefix)
	if err != nil {
		return nil, 0, err
	}
	return sortedEndpoints(kvs), rev, nil
}

func sortedEndpoints(kvs map[string]Endpoint) []Endpoint {
	out := make([]Endpoint, 0, len(kvs))
	for _, e := range kvs {
		out = append(out, e)
	}
	sortEndpoints(out)
	return out
}

// Used are the VNIs and subnets taken.
func (c *Client) Used() (vnis map[int]bool, subnets []netip.Prefix, err error) {
	ctx, cancel := c.ctx()
	defer cancel()
	vnis = map[int]bool{}
	r, err := c.c.Get(ctx, vniPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, nil, c.wrap(err)
	}
	for _, kv := range r.Kvs {
		if n, err := strconv.Atoi(strings.TrimPrefix(string(kv.Key), vniPrefix)); err == nil {
			vnis[n] = true
		}
	}
	r, err = c.c.Get(ctx, subnetPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, nil, c.wrap(err)
	}
	for _, kv := range r.Kvs {
		if p, err := netip.ParsePrefix(strings.Replace(strings.TrimPrefix(string(kv.Key), subnetPrefix), "-", "/", 1)); err == nil {
			subnets = append(subnets, p)
		}
	}
	return vnis, subnets, nil
}

// Keys counts the keys under our prefix (none: the store is as before
// the first host came).
func (c *Client) Keys() ([]string, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	r, err := c.c.Get(ctx, Prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, c.wrap(err)
	}
	var out []string
	for _, kv := range r.Kvs {
		out = append(out, string(kv.Key))
	}
	return out, nil
}

// DeleteAll removes every key of ours: the last host's reset.
func (c *Client) DeleteAll() error {
	ctx, cancel := c.ctx()
	defer cancel()
	_, err := c.c.Delete(ctx, Prefix, clientv3.WithPrefix())
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
	ops := []clientv3.Op{clientv3.OpDelete(HostKey(id))}
	for _, e := range eps {
		if e.Host == id {
			ops = append(ops, clientv3.OpDelete(EndpointKey(e.NetworkID, e.IP)))
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

// LocalEndpoints are a state's endpoints on overlay networks, as the
// store holds them (host and vtep given: this host's).
func LocalEndpoints(s *store.State, host string, vtep netip.Addr) []Endpoint {
	var out []Endpoint
	for _, name := range s.SandboxNames() {
		sb := s.Sandboxes[name]
		for _, ep := range sb.Endpoints {
			n := s.Networks[ep.Network]
			if n == nil || n.Scope != store.ScopeGlobal {
				continue
			}
			out = append(out, Endpoint{Host: host, VTEP: vtep, Network: n.Name, NetworkID: n.ID, ID: ep.ID, Sandbox: sb.Name, SandboxID: sb.ID,
				Hostname: sb.Hostname, IP: ep.IP, MAC: ep.MAC, Aliases: ep.Aliases})
		}
	}
	return out
}

func sortEndpoints(eps []Endpoint) {
	sort.Slice(eps, func(i, j int) bool {
		if eps[i].Network != eps[j].Network {
			return eps[i].Network < eps[j].Network
		}
		return eps[i].IP.Less(eps[j].IP)
	})
}

// RemoteSandbox is another host's endpoint as a sandbox of a view (or of
// the embedded DNS's names): its name, IDs, hostname and the one endpoint.
func RemoteSandbox(e Endpoint, hostName string) *store.Sandbox {
	return &store.Sandbox{ID: e.SandboxID, Name: e.Sandbox, Hostname: e.Hostname, Mode: store.ModeBridge,
		Remote:    hostName + " (" + e.VTEP.String() + ")",
		Endpoints: []*store.Endpoint{{ID: e.ID, Network: e.Network, NetworkID: e.NetworkID, IP: e.IP, MAC: e.MAC, Aliases: e.Aliases}}}
}
