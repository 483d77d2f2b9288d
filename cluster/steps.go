package cluster

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/minidocker-net/minidocker-net/plan"
)

func init() {
	plan.Register("etcd-claim", func() plan.Step { return &Claim{} })
	plan.Register("etcd-release", func() plan.Step { return &Release{} })
}

// KV is one key and the value it is to hold.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Claim writes keys that must not exist yet, all or none, in one
// transaction (If CreateRevision == 0 for each): a network with its VNI
// and subnet, or an endpoint's address. Under a lease (not 0) the keys go
// with the host. Undone, it deletes those keys that still hold its
// values. A claim already in place is satisfied: a repair or a rollback's
// retry finds it done.
type Claim struct {
	Store string `json:"store"`
	KVs   []KV   `json:"kvs"`
	Lease int64  `json:"lease,omitempty"`
	What  string `json:"what"` // for errors: "network ov", "address 10.0.0.2 on ov"

	// In this process: Apply was tried and wrote nothing (a store that
	// did not answer, a key taken), so Undo has nothing to undo.
	failed bool
}

// TakenError is a claim that lost: another host took a key first. The
// command is planned again from the store's new contents.
type TakenError struct{ What, Key string }

func (e *TakenError) Error() string {
	return fmt.Sprintf("%s: %s was taken by another host at the same time", e.What, e.Key)
}

func (s *Claim) Kind() string { return "etcd-claim" }

func (s *Claim) etcdctl() string {
	return "etcdctl --endpoints " + strings.Join(Config{Store: s.Store}.Endpoints(), ",")
}

func (s *Claim) Commands() []string {
	var out []string
	lease := ""
	if s.Lease != 0 {
		lease = " --lease=" + strconv.FormatInt(s.Lease, 16)
	}
	for _, kv := range s.KVs {
		out = append(out, s.etcdctl()+" put "+kv.Key+" "+plan.Quote(kv.Value)+lease)
	}
	if len(out) > 1 {
		out[0] = "# in one transaction, if none of these keys exists yet:\n" + out[0]
	}
	return out
}

func (s *Claim) UndoCommands() []string {
	var out []string
	for i := len(s.KVs) - 1; i >= 0; i-- {
		out = append(out, s.etcdctl()+" del "+s.KVs[i].Key)
	}
	return out
}

func clientKey(storeURL string) string { return "cluster.client." + storeURL }

func client(ctx *plan.Context, storeURL string) (*Client, error) {
	return plan.Cached(ctx, clientKey(storeURL), func() (*Client, error) { return Dial(Config{Store: storeURL}) })
}

// Lend gives a plan's steps the connection a command already has (one
// dial less, about 1.5 ms).
func Lend(ctx *plan.Context, s Store) {
	if c, ok := s.(*Client); ok {
		plan.Lend(ctx, clientKey(c.cfg.Store), c)
	}
}

// Satisfied: every key holds the claim's value.
func (s *Claim) Satisfied(ctx *plan.Context) (bool, error) {
	c, err := client(ctx, s.Store)
	if err != nil {
		return false, err
	}
	return s.held(c)
}

func (s *Claim) held(c *Client) (bool, error) {
	cx, cancel := c.ctx()
	defer cancel()
	var ops []clientv3.Op
	for _, kv := range s.KVs {
		ops = append(ops, clientv3.OpGet(kv.Key))
	}
	r, err := c.c.Txn(cx).Then(ops...).Commit()
	if err != nil {
		return false, c.wrap(err)
	}
	for i, resp := range r.Responses {
		kvs := resp.GetResponseRange().Kvs
		if len(kvs) != 1 || string(kvs[0].Value) != s.KVs[i].Value {
			return false, nil
		}
	}
	return true, nil
}

func (s *Claim) Apply(ctx *plan.Context) error {
	s.failed = false
	err := s.apply(ctx)
	s.failed = err != nil
	return err
}

func (s *Claim) apply(ctx *plan.Context) error {
	c, err := client(ctx, s.Store)
	if err != nil {
		return err
	}
	cx, cancel := c.ctx()
	defer cancel()
	var ifs []clientv3.Cmp
	var puts []clientv3.Op
	for _, kv := range s.KVs {
		ifs = append(ifs, clientv3.Compare(clientv3.CreateRevision(kv.Key), "=", 0))
		if s.Lease != 0 {
			puts = append(puts, clientv3.OpPut(kv.Key, kv.Value, clientv3.WithLease(clientv3.LeaseID(s.Lease))))
		} else {
			puts = append(puts, clientv3.OpPut(kv.Key, kv.Value))
		}
	}
	r, err := c.c.Txn(cx).If(ifs...).Then(puts...).Commit()
	if err != nil {
		if strings.Contains(err.Error(), "requested lease not found") {
			return fmt.Errorf("%s: this host's lease in the cluster store has expired (etcd restarted?): the cluster agent is renewing it, run the command again", s.What)
		}
		return c.wrap(err)
	}
	if r.Succeeded {
		return nil
	}
	if held, err := s.held(c); err != nil || held {
		return err
	}
	return &TakenError{What: s.What, Key: s.taken(c)}
}

// taken names the first key that exists.
func (s *Claim) taken(c *Client) string {
	cx, cancel := c.ctx()
	defer cancel()
	for _, kv := range s.KVs {
		if r, err := c.c.Get(cx, kv.Key, clientv3.WithCountOnly()); err == nil && r.Count > 0 {
			return kv.Key
		}
	}
	return s.KVs[0].Key
}

// Undo deletes the keys that still hold the claim's values.
func (s *Claim) Undo(ctx *plan.Context) error {
	if s.failed {
		return nil
	}
	c, err := client(ctx, s.Store)
	if err != nil {
		return err
	}
	cx, cancel := c.ctx()
	defer cancel()
	var errs []error
	for _, kv := range s.KVs {
		_, err := c.c.Txn(cx).If(clientv3.Compare(clientv3.Value(kv.Key), "=", kv.Value)).Then(clientv3.OpDelete(kv.Key)).Commit()
		errs = append(errs, c.wrap(err))
	}
	return errors.Join(errs...)
}

// Release is a Claim undone: it deletes the keys that hold the claim's
// values, and undone, it writes them back. A release that could not
// delete (the store did not answer) has nothing to write back.
type Release struct {
	Claim Claim `json:"claim"`

	failed bool
}

func (s *Release) Kind() string           { return "etcd-release" }
func (s *Release) Commands() []string     { return s.Claim.UndoCommands() }
func (s *Release) UndoCommands() []string { return s.Claim.Commands() }
func (s *Release) Apply(ctx *plan.Context) error {
	s.Claim.failed = false
	err := s.Claim.Undo(ctx)
	s.failed = err != nil
	return err
}
func (s *Release) Undo(ctx *plan.Context) error {
	if s.failed {
		return nil
	}
	return s.Claim.Apply(ctx)
}
