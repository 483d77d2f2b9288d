// Package engine is the orchestration: it turns a command into a new state
// and a plan of primitive steps, and commits both as one transaction.
package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/hostd"
	"github.com/minidocker-net/minidocker-net/iptables"
	"github.com/minidocker-net/minidocker-net/nft"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// Options configure an engine.
type Options struct {
	Paths   store.Paths
	DryRun  bool      // print plans instead of applying them
	Verbose io.Writer // print each step as it runs; nil for quiet
	Out     io.Writer // where dry-run plans go
	Warn    io.Writer // where warnings go (Docker's, as "WARNING: ..."); default stderr
	// Kernel answers the engine's questions while it plans (default: the
	// host); Firewall makes the firewall backend of one command for one
	// address family, given where it may keep what it read (default:
	// iptables and ip6tables, or nftables); FirewallBackend is the one the
	// flag or environment asked for ("" for the host's, or iptables).
	Kernel          Kernel
	Firewall        func(backend string, f firewall.Family, cache string) firewall.Backend
	FirewallBackend string
	// Cluster is the cluster store and advertise address the flags gave
	// (none: the host's remembered ones); ClusterStore reads that store
	// while a command plans (default: etcd's client).
	Cluster      cluster.Config
	ClusterStore func(cluster.Config) (cluster.Store, error)
}

// Engine runs commands against the host.
type Engine struct {
	opts   Options
	kernel Kernel
	// planned is the state a dry run left, for the next command of the
	// same invocation (network rm a b): printed plans compose only if
	// each starts where the one before ended.
	planned *store.State
	cluster cluster.Store // dialed on first need
}

// New returns an engine.
func New(opts Options) *Engine {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Warn == nil {
		opts.Warn = os.Stderr
	}
	if opts.Kernel == nil {
		opts.Kernel = hostKernel{}
	}
	if opts.Firewall == nil {
		opts.Firewall = func(backend string, f firewall.Family, cache string) firewall.Backend {
			switch {
			case backend == firewall.NFTables:
				return nft.New(f)
			case f == firewall.IPv6:
				return iptables.NewFamily(iptables.IPv6, cache)
			}
			return iptables.New(cache)
		}
	}
	e := &Engine{opts: opts, kernel: opts.Kernel}
	if e.opts.ClusterStore == nil {
		// Through the host's process, started when it does not run.
		e.opts.ClusterStore = func(cluster.Config) (cluster.Store, error) {
			if err := e.ensureAgent(); err != nil {
				return nil, err
			}
			return hostd.Store{Paths: e.opts.Paths}, nil
		}
	}
	return e
}

// Firewall returns the host's firewall backend as state s records it,
// for the views: what it owns and how a packet goes through it.
func (e *Engine) Firewall(s *store.State) firewall.Backend {
	return e.firewall(hostBackend(s), firewall.IPv4)
}

// Firewall6 is Firewall's for IPv6, which IPv6 networks' rules are in.
func (e *Engine) Firewall6(s *store.State) firewall.Backend {
	return e.firewall(hostBackend(s), firewall.IPv6)
}

func (e *Engine) firewall(backend string, f firewall.Family) firewall.Backend {
	cache := e.opts.Paths.RulesetCache()
	if f == firewall.IPv6 {
		cache = e.opts.Paths.RulesetCache6()
	}
	return e.opts.Firewall(backend, f, cache)
}

// warn says what Docker warns about, and goes on.
func (e *Engine) warn(format string, a ...any) {
	fmt.Fprintf(e.opts.Warn, "WARNING: "+format+"\n", a...)
}

// Paths returns where state lives.
func (e *Engine) Paths() store.Paths { return e.opts.Paths }

// tx is one command in progress: the state before, the state being built,
// and the steps that take the kernel from one to the other.
type tx struct {
	e        *Engine
	old, new *store.State
	setup    []plan.Step // create kernel objects
	files    []plan.Step // update other sandboxes' /etc files
	teardown []plan.Step // delete kernel objects (after their rules went)
	post     []plan.Step // after everything else (conntrack flushes)
	// final holds what cannot be undone or must come last, once nothing
	// else can fail: a detached program's start, a log's and processes'
	// removal.
	final []plan.Step
	// learns: a step fills in the new state as it applies (a started
	// program's pid), so the records are diffed again afterwards.
	learns bool
	// backend names the firewall backend (recorded with the networks),
	// fw and fw6 are its two families.
	backend string
	fw      firewall.Backend
	fw6     firewall.Backend // IPv6 networks' rules
	// cluster are the cluster store's claims and releases, first in the
	// plan: a store that does not answer, or a claim another host won,
	// stops the command before the kernel changes. global caches the
	// store's networks for the command.
	cluster []plan.Step
	global  map[string]*store.Network
}

// View runs fn on the current state under a shared lock.
func (e *Engine) View(fn func(*store.State) error) error {
	st, err := store.Open(e.opts.Paths, false)
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := st.Load()
	if err != nil {
		return err
	}
	return fn(s)
}

// TimingEnv makes every command print where its time went, phase by phase
// and step by step, on stderr: for measuring, as the README's performance
// section does.
const TimingEnv = "MINIDOCKER_NET_TIMING"

type timer struct {
	on    bool
	start time.Time
	last  time.Time
}

func newTimer() *timer {
	now := time.Now()
	return &timer{on: os.Getenv(TimingEnv) != "", start: now, last: now}
}

func (t *timer) mark(what string) {
	if !t.on {
		return
	}
	now := time.Now()
	fmt.Fprintf(os.Stderr, "timing: %-34s %7.2f ms\n", what, float64(now.Sub(t.last).Microseconds())/1000)
	t.last = now
}

// mutate runs one command as a transaction. build validates the request
// and fills the tx; an error from it changes nothing.
// A claim in the cluster store that another host won at the same time
// (an address, a VNI), or one made under a lease the store lost, starts
// the command over, from the store's new contents (and the agent's new
// lease); the plan rolled back what it had done.
func (e *Engine) mutate(title string, build func(t *tx) error) error {
	var err error
	for range 8 {
		err = e.transact(title, build, false)
		var taken *cluster.TakenError
		if !errors.As(err, &taken) && !errors.Is(err, cluster.ErrLeaseLost) {
			return err
		}
	}
	return err
}

func (e *Engine) transact(title string, build func(t *tx) error, converge bool) error {
	tm := newTimer()
	defer func() { tm.last = tm.start; tm.mark("total (in process)") }()
	st, err := store.Open(e.opts.Paths, !e.opts.DryRun)
	if err != nil {
		return err
	}
	defer st.Close()
	tm.mark("lock")
	if !e.opts.DryRun {
		if err := e.recover(st); err != nil {
			return err
		}
	}
	old, err := st.Load()
	if err != nil {
		return err
	}
	if e.opts.DryRun && e.planned != nil {
		old = e.planned
	}
	tm.mark(fmt.Sprintf("load records (%d)", len(old.Networks)+len(old.Sandboxes)))
	backend := e.backend(old)
	t := &tx{e: e, old: old, new: old.Clone(), backend: backend, fw: e.firewall(backend, firewall.IPv4), fw6: e.firewall(backend, firewall.IPv6)}
	if err := build(t); err != nil {
		return err
	}
	if err := t.settleDefault(); err != nil {
		return err
	}
	if err := t.settleGlobal(); err != nil {
		return err
	}
	if err := t.recordBackend(); err != nil {
		return err
	}
	tm.mark("build the new state")
	p, err := t.plan(title)
	if err != nil {
		return err
	}
	if converge {
		// A repair changes only what is not in place.
		ctx := plan.NewContext(nil)
		e.lendStore(ctx)
		p.Steps = plan.Needed(ctx, p.Steps)
		ctx.Close()
	}
	tm.mark(fmt.Sprintf("plan (%d steps)", len(p.Steps)))
	if e.opts.DryRun {
		e.planned = t.new
		p.Render(e.opts.Out)
		if needsResolver(t.new) || needsResolver(t.old) {
			fmt.Fprintln(e.opts.Out, "# then the embedded DNS (one resolver process for the host) reads the records the command wrote")
		}
		return nil
	}
	changes, err := st.Diff(t.old, t.new)
	if err != nil {
		return err
	}
	tm.mark(fmt.Sprintf("diff records (%d files change)", len(changes)))
	if converge {
		// A repair may rebuild a namespace deleted under the embedded DNS,
		// whose sockets keep the old one (and its interfaces) alive: it
		// lets go of what is gone first.
		if hostd.Pid(e.opts.Paths) != 0 {
			_ = hostd.Sync(e.opts.Paths, nil)
		}
		ctx := plan.NewContext(e.opts.Verbose)
		defer ctx.Close()
		e.lendStore(ctx)
		err := p.Converge(ctx)
		if werr := st.Write(changes); werr != nil {
			return errors.Join(err, werr)
		}
		return errors.Join(err, e.syncResolver(t.new, changes, true))
	}
	return e.commit(st, p, changes, tm, t)
}

// plan assembles the steps: objects are created, then the rules change,
// then other sandboxes' files, then objects are deleted (their rules are
// gone by then), then flushes.
func (t *tx) plan(title string) (*plan.Plan, error) {
	p := &plan.Plan{Title: title}
	p.Add(t.cluster...)
	p.Add(t.setup...)
	rules, err := t.ruleSteps()
	if err != nil {
		return nil, err
	}
	p.Add(rules...)
	p.Add(t.files...)
	p.Add(t.teardown...)
	p.Add(t.post...)
	p.Add(t.final...)
	return p, nil
}

// commit journals the plan and the state files it replaces, applies the
// plan, writes the new state and drops the journal. The ruleset cache is
// kept while a network is left.
func (e *Engine) commit(st *store.Store, p *plan.Plan, changes []store.FileChange, tm *timer, t *tx) error {
	if p.Empty() && len(changes) == 0 {
		return nil
	}
	before, err := store.BeforeImages(changes)
	if err != nil {
		return err
	}
	steps, err := plan.Marshal(p.Steps)
	if err != nil {
		return err
	}
	ctx := plan.NewContext(e.opts.Verbose)
	defer ctx.Close()
	e.lendStore(ctx)
	t.fw.Prestart(ctx, p.Steps)
	j := &store.Journal{Title: p.Title, Pid: os.Getpid(), Started: time.Now().UTC(), Steps: steps, Before: before}
	if err := st.WriteJournal(j); err != nil {
		return err
	}
	tm.mark("journal")
	if tm.on {
		ctx.Timing = os.Stderr
	}
	err = p.Apply(ctx)
	tm.mark("apply")
	if err != nil {
		var se *plan.StepError
		if errors.As(err, &se) && se.Rollback != nil {
			return err // the journal stays: the next command retries the undo
		}
		if rerr := st.RemoveJournal(); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	defer tm.mark("drop journal")
	if t.learns {
		// The same files, with what the steps learned.
		if changes, err = st.Diff(t.old, t.new); err != nil {
			return err
		}
	}
	if err := st.Write(changes); err != nil {
		uerr := p.Undo(ctx)
		werr := st.Write(before)
		if uerr == nil && werr == nil {
			_ = st.RemoveJournal()
		}
		return errors.Join(fmt.Errorf("record the new state: %w", err), uerr, werr)
	}
	tm.mark("write records")
	// The embedded DNS answers the new names before the command returns;
	// if it cannot, the command changes nothing.
	if err := e.syncResolver(t.new, changes, false); err != nil {
		uerr := p.Undo(ctx)
		werr := st.Write(before)
		if uerr == nil && werr == nil {
			_ = st.RemoveJournal()
			_ = e.syncResolver(t.old, before, false)
		}
		return errors.Join(err, uerr, werr)
	}
	tm.mark("the embedded DNS made current")
	t.fw.Keep(ctx, len(t.new.Networks) > 0)
	e.handOver()
	tm.mark("the nf_tables socket handed over")
	return st.RemoveJournal()
}

// recover rolls back a command that was interrupted (its process died
// while holding the lock): undo its steps, put its state files back, and
// rewrite every sandbox's /etc files from the restored records.
func (e *Engine) recover(st *store.Store) error {
	j, err := st.ReadJournal()
	if err != nil || j == nil {
		return err
	}
	steps, err := plan.Unmarshal(j.Steps)
	if err != nil {
		return fmt.Errorf("interrupted command %q: %w", j.Title, err)
	}
	if e.opts.Verbose != nil {
		fmt.Fprintf(e.opts.Verbose, "# rolling back the interrupted command %q (pid %d, started %s)\n", j.Title, j.Pid, j.Started.Format(time.RFC3339))
	}
	ctx := plan.NewContext(e.opts.Verbose)
	defer ctx.Close()
	if joined(e.opts.Paths) {
		// Its claims are undone through the host's process.
		if err := e.ensureAgent(); err != nil {
			return fmt.Errorf("roll back interrupted command %q: %w", j.Title, err)
		}
	}
	e.lendStore(ctx)
	uerr := (&plan.Plan{Steps: steps}).Undo(ctx)
	if err := st.Write(j.Before); err != nil {
		return errors.Join(fmt.Errorf("roll back interrupted command %q: %w", j.Title, err), uerr)
	}
	if uerr != nil {
		return fmt.Errorf("roll back interrupted command %q: %w", j.Title, uerr)
	}
	s, err := st.Load()
	if err != nil {
		return err
	}
	if err := e.resyncEtc(s); err != nil {
		return err
	}
	// The resolver may have read what was rolled back.
	if err := e.syncResolver(s, nil, true); err != nil {
		return err
	}
	return st.RemoveJournal()
}

// lendStore gives a plan's steps the way to the cluster store: the
// command's store when it writes too (the host's process), else the
// host's process.
func (e *Engine) lendStore(ctx *plan.Context) {
	if _, ok := e.clusterConfig(); !ok {
		return
	}
	if w, ok := e.cluster.(cluster.Writer); ok {
		cluster.Lend(ctx, w)
		return
	}
	cluster.Lend(ctx, hostd.Store{Paths: e.opts.Paths})
}
