// Package plan turns every command into a list of primitive steps that can
// apply themselves, undo themselves and print themselves as the equivalent
// shell command. Applying a plan runs its steps in order and, if one fails,
// undoes the ones already done in reverse, so no half-built network is left.
package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Step is one primitive change to the host. Apply and Undo must both be
// idempotent: Undo is also called for a step whose Apply failed half-way, and
// crash recovery undoes steps that may never have run.
type Step interface {
	// Kind names the step type in the journal (see Register).
	Kind() string
	Apply(ctx *Context) error
	Undo(ctx *Context) error
	// Commands renders Apply as the equivalent shell commands.
	Commands() []string
	// UndoCommands renders Undo the same way.
	UndoCommands() []string
}

// Checker is a step that can tell whether what it builds is already in
// place. Repairs (restore, doctor --fix) leave such steps out, so their
// plan, printed or applied, holds only what they change.
type Checker interface {
	Satisfied(ctx *Context) (bool, error)
}

// Maker is a step that makes an object other steps then configure (a
// link: "link:NETNS/NAME"); User is a step that configures one.
type Maker interface{ Makes() string }
type User interface{ Uses() string }

// Needed returns the steps whose object is not in place: every step that
// cannot check itself, and every Checker that finds its work undone (or
// cannot tell). A step that configures an object a kept step makes is
// kept too, whatever it finds now: what it finds may go with the object
// being made again (a veth whose far end is in a namespace the kernel has
// not destroyed yet).
func Needed(ctx *Context, steps []Step) []Step {
	var out []Step
	remade := map[string]bool{}
	for _, s := range steps {
		u, uses := s.(User)
		if c, ok := s.(Checker); ok && !(uses && remade[u.Uses()]) {
			if done, err := c.Satisfied(ctx); err == nil && done {
				continue
			}
		}
		if m, ok := s.(Maker); ok {
			remade[m.Makes()] = true
		}
		out = append(out, s)
	}
	return out
}

// Releaser is a step whose undoing, when its namespace goes right after,
// can be left to the kernel: Released is what to do instead (a veth's host
// end taken off its bridge rather than deleted, which waits for an RCU
// barrier).
type Releaser interface {
	Released() Step
}

// Context carries what steps of one plan share: a place to cache expensive
// reads (the iptables ruleset, namespace handles) and the verbose writer.
type Context struct {
	Verbose io.Writer
	// Timing, when set, receives how long each step took.
	Timing  io.Writer
	cache   map[string]any
	closers []func()
}

// NewContext returns an empty context; verbose may be nil.
func NewContext(verbose io.Writer) *Context {
	return &Context{Verbose: verbose, cache: map[string]any{}}
}

// Cached returns the value stored under key, building it with mk on first use.
// A value with a Close method is closed by Context.Close.
func Cached[T any](ctx *Context, key string, mk func() (T, error)) (T, error) {
	if v, ok := ctx.cache[key]; ok {
		return v.(T), nil
	}
	v, err := mk()
	if err != nil {
		return v, err
	}
	ctx.cache[key] = v
	if c, ok := any(v).(interface{ Close() }); ok {
		ctx.closers = append(ctx.closers, c.Close)
	}
	return v, nil
}

// Lookup returns a cached value without building it.
func Lookup[T any](ctx *Context, key string) (T, bool) {
	v, ok := ctx.cache[key].(T)
	return v, ok
}

// Seed stores a value in the cache ahead of its first use; one with a
// Close method is closed by Context.Close.
func Seed(ctx *Context, key string, v any) {
	ctx.cache[key] = v
	if c, ok := v.(interface{ Close() }); ok {
		ctx.closers = append(ctx.closers, c.Close)
	}
}

// Lend stores a value its owner keeps (and closes): the context never
// closes it.
func Lend(ctx *Context, key string, v any) { ctx.cache[key] = v }

// Forget drops a cached value, for example after a write made it stale.
func (ctx *Context) Forget(key string) { delete(ctx.cache, key) }

// Close releases cached resources.
func (ctx *Context) Close() {
	for i := len(ctx.closers) - 1; i >= 0; i-- {
		ctx.closers[i]()
	}
	ctx.closers = nil
	ctx.cache = map[string]any{}
}

// Plan is an ordered list of steps with a title saying what it achieves.
type Plan struct {
	Title string
	Steps []Step
}

// Add appends steps to the plan.
func (p *Plan) Add(steps ...Step) { p.Steps = append(p.Steps, steps...) }

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// Render writes the plan as a shell script, each step under a comment
// with its number: run by hand, it builds what the tool builds.
func (p *Plan) Render(w io.Writer) {
	if p.Title != "" {
		fmt.Fprintf(w, "# %s\n", p.Title)
	}
	if p.Empty() {
		fmt.Fprintln(w, "# nothing to do")
		return
	}
	for i, s := range p.Steps {
		fmt.Fprintf(w, "# step %d\n", i+1)
		for _, c := range s.Commands() {
			fmt.Fprintln(w, c)
		}
	}
}

func writeStep(w io.Writer, n int, cmds []string) {
	for j, c := range cmds {
		prefix := fmt.Sprintf("%3d  ", n)
		if j > 0 {
			prefix = "     "
		}
		fmt.Fprintf(w, "%s%s\n", prefix, strings.ReplaceAll(c, "\n", "\n     "))
	}
}

// Environment variables that make plans fail or crash on purpose, so tests
// can prove that every step rolls back (see the README's guarantees).
const (
	// FailStepEnv makes the Nth step (1-based) of every applied plan fail
	// before it changes anything.
	FailStepEnv = "MINIDOCKER_NET_FAIL_STEP"
	// CrashStepEnv makes the process kill itself with SIGKILL just before
	// the Nth step, as a crash would.
	CrashStepEnv = "MINIDOCKER_NET_CRASH_STEP"
)

// ErrInjected is the error a step returns when FailStepEnv selects it.
var ErrInjected = errors.New("fault injected by " + FailStepEnv)

func envStep(name string) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return 0
	}
	return n
}

// StepError says which step failed and whether the rollback was complete.
type StepError struct {
	Index    int // 1-based
	Commands []string
	Err      error
	Rollback error // nil when every done step was undone
}

func (e *StepError) Error() string {
	cmd := ""
	if len(e.Commands) > 0 {
		cmd = strings.SplitN(e.Commands[0], "\n", 2)[0]
	}
	msg := fmt.Sprintf("step %d (%s): %v", e.Index, cmd, e.Err)
	if e.Rollback != nil {
		return msg + "; rollback incomplete: " + e.Rollback.Error() + "; run 'minidocker-net doctor --fix'"
	}
	return msg + "; all changes rolled back"
}

func (e *StepError) Unwrap() error { return e.Err }

// Apply runs the steps in order. On failure it undoes the failed step and
// every done step in reverse order and returns a *StepError.
func (p *Plan) Apply(ctx *Context) error {
	failAt, crashAt := envStep(FailStepEnv), envStep(CrashStepEnv)
	for i, s := range p.Steps {
		n := i + 1
		if n == crashAt {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		if ctx.Verbose != nil {
			writeStep(ctx.Verbose, n, s.Commands())
		}
		var err error
		start := time.Now()
		if n == failAt {
			err = ErrInjected
		} else {
			err = s.Apply(ctx)
		}
		if ctx.Timing != nil {
			fmt.Fprintf(ctx.Timing, "timing:   step %3d %-23s %7.2f ms\n", n, s.Kind(), float64(time.Since(start).Microseconds())/1000)
		}
		if err != nil {
			se := &StepError{Index: n, Commands: s.Commands(), Err: err}
			se.Rollback = undo(ctx, p.Steps[:n])
			return se
		}
	}
	return nil
}

// Converge applies every step and keeps going past failures: for repairs,
// where undoing would take down what was healthy before. Steps are
// idempotent, so a step that finds its object in place changes nothing.
func (p *Plan) Converge(ctx *Context) error {
	var errs []error
	for i, s := range p.Steps {
		if ctx.Verbose != nil {
			writeStep(ctx.Verbose, i+1, s.Commands())
		}
		if err := s.Apply(ctx); err != nil {
			errs = append(errs, fmt.Errorf("step %d (%s): %w", i+1, strings.SplitN(s.Commands()[0], "\n", 2)[0], err))
		}
	}
	return errors.Join(errs...)
}

// Undo undoes every step in reverse order, continuing past failures, and
// returns all errors joined. Crash recovery uses it on a journaled plan.
func (p *Plan) Undo(ctx *Context) error { return undo(ctx, p.Steps) }

func undo(ctx *Context, steps []Step) error {
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		s := steps[i]
		if ctx.Verbose != nil {
			fmt.Fprintf(ctx.Verbose, "undo %d: %s\n", i+1, strings.Join(s.UndoCommands(), "; "))
		}
		if err := s.Undo(ctx); err != nil {
			errs = append(errs, fmt.Errorf("undo step %d: %w", i+1, err))
		}
	}
	return errors.Join(errs...)
}

// Reverse turns a setup step into its teardown: applying it undoes the inner
// step. Teardown plans are built from the same steps as setup, reversed, so
// removing an object undoes exactly what creating it did.
type Reverse struct{ Inner Step }

func (r Reverse) Kind() string                 { return "reverse" }
func (r Reverse) Apply(ctx *Context) error     { return r.Inner.Undo(ctx) }
func (r Reverse) Undo(ctx *Context) error      { return r.Inner.Apply(ctx) }
func (r Reverse) Commands() []string           { return r.Inner.UndoCommands() }
func (r Reverse) UndoCommands() []string       { return r.Inner.Commands() }
func (r Reverse) MarshalJSON() ([]byte, error) { return Marshal([]Step{r.Inner}) }

// Reversed returns the teardown of a setup step list: each step reversed, in
// reverse order.
func Reversed(steps []Step) []Step {
	out := make([]Step, 0, len(steps))
	for i := len(steps) - 1; i >= 0; i-- {
		if r, ok := steps[i].(Reverse); ok {
			out = append(out, r.Inner)
			continue
		}
		out = append(out, Reverse{steps[i]})
	}
	return out
}

var registry = map[string]func() Step{}

// Register makes a step kind loadable from a journal. The factory returns a
// pointer to a zero value that JSON can fill.
func Register(kind string, factory func() Step) {
	if _, dup := registry[kind]; dup {
		panic("plan: step kind registered twice: " + kind)
	}
	registry[kind] = factory
}

type envelope struct {
	Kind string          `json:"kind"`
	Step json.RawMessage `json:"step"`
}

// Marshal encodes steps for the journal.
func Marshal(steps []Step) ([]byte, error) {
	envs := make([]envelope, 0, len(steps))
	for _, s := range steps {
		var raw []byte
		var err error
		if r, ok := s.(Reverse); ok {
			raw, err = r.MarshalJSON()
		} else {
			raw, err = json.Marshal(s)
		}
		if err != nil {
			return nil, fmt.Errorf("encode step %s: %w", s.Kind(), err)
		}
		envs = append(envs, envelope{Kind: s.Kind(), Step: raw})
	}
	return json.Marshal(envs)
}

// Unmarshal decodes steps written by Marshal.
func Unmarshal(data []byte) ([]Step, error) {
	var envs []envelope
	if err := json.Unmarshal(data, &envs); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	steps := make([]Step, 0, len(envs))
	for _, e := range envs {
		if e.Kind == "reverse" {
			inner, err := Unmarshal(e.Step)
			if err != nil {
				return nil, err
			}
			if len(inner) != 1 {
				return nil, fmt.Errorf("decode plan: reverse step holds %d steps", len(inner))
			}
			steps = append(steps, Reverse{inner[0]})
			continue
		}
		mk, ok := registry[e.Kind]
		if !ok {
			return nil, fmt.Errorf("decode plan: unknown step kind %q", e.Kind)
		}
		s := mk()
		if err := json.Unmarshal(e.Step, s); err != nil {
			return nil, fmt.Errorf("decode plan step %s: %w", e.Kind, err)
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// Quote quotes a word for a POSIX shell when it needs it, so that what a
// plan prints runs as it reads, whatever a user named things.
func Quote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,/:=+@%") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
