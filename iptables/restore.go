package iptables

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/plan"
)

// restorer is an iptables-restore --noflush waiting for its script on
// stdin. Each table of the script applies atomically: all its ops, or none.
type restorer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	done   bool
	tool   string
}

func startRestore(f Family) (*restorer, error) {
	r := &restorer{cmd: exec.Command(f.Restore, "--noflush", "--wait")}
	r.cmd.Stderr = &r.stderr
	// Should it leave a child holding its stderr, Wait still returns.
	r.cmd.WaitDelay = 2 * time.Second
	stdin, err := r.cmd.StdinPipe()
	if err == nil {
		err = r.cmd.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Restore, err)
	}
	r.stdin, r.tool = stdin, f.Restore
	return r, nil
}

// finish feeds the script and waits for it to be applied.
func (r *restorer) finish(script string) error {
	r.done = true
	_, werr := io.WriteString(r.stdin, script)
	r.stdin.Close()
	if err := r.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w: %s", r.tool, err, strings.TrimSpace(r.stderr.String()))
	}
	if werr != nil {
		return fmt.Errorf("%s: %w", r.tool, werr)
	}
	return nil
}

// Close ends a restorer that was never given a script: at the end of an
// empty input it exits, having nothing to commit.
func (r *restorer) Close() {
	if !r.done {
		r.done = true
		r.stdin.Close()
		_ = r.cmd.Wait()
	}
}

func restore(f Family, script string) error {
	r, err := startRestore(f)
	if err != nil {
		return err
	}
	return r.finish(script)
}

// Prestart starts the iptables-restore of the plan's first rule change
// before the plan runs, so that its exec and start-up (about 1.2 ms, as
// long as the rule change itself) overlap the steps before it. Starting
// changes nothing: an unused one is ended without input.
func Prestart(ctx *plan.Context, steps []plan.Step) {
	for _, s := range steps {
		if r, ok := s.(*RulesStep); ok && len(r.Ops) > 0 {
			f := FamilyNamed(r.Family)
			_, _ = plan.Cached(ctx, f.key("restorer"), func() (*restorer, error) { return startRestore(f) }) // on error, the step starts its own and reports
			return
		}
	}
}

// restoreIn applies a script with the plan's prestarted iptables-restore,
// or a new one.
func restoreIn(ctx *plan.Context, f Family, script string) error {
	if r, ok := plan.Lookup[*restorer](ctx, f.key("restorer")); ok && !r.done {
		ctx.Forget(f.key("restorer"))
		return r.finish(script)
	}
	return restore(f, script)
}
