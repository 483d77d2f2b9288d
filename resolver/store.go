package resolver

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/cluster/etcd"
	"github.com/minidocker-net/minidocker-net/hostd"
)

// storeRequest serves a command's read or write of the cluster store
// (hostd's requests) over the process's one connection to etcd.
func (r *resolver) storeRequest(f []string) (string, error) {
	if len(f) == 0 {
		return "", errors.New("empty store request")
	}
	c, err := r.storeClient()
	if err != nil {
		return "", err
	}
	arg := func(v any) error {
		if len(f) < 2 {
			return fmt.Errorf("store %s: no argument", f[0])
		}
		return json.Unmarshal([]byte(f[1]), v)
	}
	var out any
	switch f[0] {
	case hostd.OpNetworks:
		out, err = c.Networks()
	case hostd.OpEndpoints:
		var netID string
		if err = arg(&netID); err == nil {
			out, _, err = c.Endpoints(netID)
		}
	case hostd.OpUsed:
		var u hostd.Used
		if u.VNIs, u.Subnets, err = c.Used(); err == nil {
			out = u
		}
	case hostd.OpHosts:
		out, err = c.Hosts()
	case hostd.OpClaim:
		var a hostd.ClaimArgs
		if err = arg(&a); err == nil {
			out, err = c.Claim(a.KVs, a.Lease)
		}
	case hostd.OpRelease:
		var kvs []cluster.KV
		if err = arg(&kvs); err == nil {
			err = c.Release(kvs)
		}
	case hostd.OpHeld:
		var kvs []cluster.KV
		if err = arg(&kvs); err == nil {
			out, err = c.Held(kvs)
		}
	case hostd.OpResetHost:
		var id string
		if err = arg(&id); err == nil {
			err = c.ResetHost(id)
		}
	default:
		return "", fmt.Errorf("unknown store request %q", f[0])
	}
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// storeClient is the connection to the host's cluster store.
func (r *resolver) storeClient() (*etcd.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store != nil {
		return r.store, nil
	}
	cfg, ok, err := cluster.Load(r.paths)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("this host is in no cluster")
	}
	if r.store, err = etcd.Dial(cfg); err != nil {
		return nil, err
	}
	return r.store, nil
}
