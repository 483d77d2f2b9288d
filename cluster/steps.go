package cluster

import (
	"errors"
	"strconv"
	"strings"

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

// Writer makes the store's changes a plan's steps ask for. The host's
// long-running process holds the one connection to etcd; a command asks it
// (so no command links etcd's client, nor dials it).
type Writer interface {
	// Claim writes keys that must not exist yet, all or none, under a
	// lease (0: none); a claim already held with these values stands. It
	// returns the first key another host holds ("" when claimed).
	Claim(kvs []KV, lease int64) (taken string, err error)
	// Release deletes the keys that still hold these values.
	Release(kvs []KV) error
	// Held says whether every key holds its value.
	Held(kvs []KV) (bool, error)
}

const writerKey = "cluster.writer"

// Lend gives a plan's steps the way to the store.
func Lend(ctx *plan.Context, w Writer) { plan.Lend(ctx, writerKey, w) }

func writer(ctx *plan.Context) (Writer, error) {
	if w, ok := plan.Lookup[Writer](ctx, writerKey); ok {
		return w, nil
	}
	return nil, errors.New("no way to the cluster store: the cluster agent is not running ('minidocker-net doctor --fix' starts it)")
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

// Satisfied: every key holds the claim's value.
func (s *Claim) Satisfied(ctx *plan.Context) (bool, error) {
	w, err := writer(ctx)
	if err != nil {
		return false, err
	}
	return w.Held(s.KVs)
}

func (s *Claim) Apply(ctx *plan.Context) error {
	s.failed = true
	w, err := writer(ctx)
	if err != nil {
		return err
	}
	taken, err := w.Claim(s.KVs, s.Lease)
	if err != nil {
		return err
	}
	if taken != "" {
		return &TakenError{What: s.What, Key: taken}
	}
	s.failed = false
	return nil
}

// Undo deletes the keys that still hold the claim's values.
func (s *Claim) Undo(ctx *plan.Context) error {
	if s.failed {
		return nil
	}
	w, err := writer(ctx)
	if err != nil {
		return err
	}
	return w.Release(s.KVs)
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

// LeaseLine is how the agent's lease is asked for over the process's
// control socket.
const LeaseLine = "lease"

// ParseLease reads the agent's answer.
func ParseLease(s string) (int64, error) {
	return strconv.ParseInt(strings.TrimSpace(s), 16, 64)
}
