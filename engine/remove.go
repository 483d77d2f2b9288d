package engine

import (
	"errors"
	"fmt"
	"os"

	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/rawfile"
	"github.com/minidocker-net/minidocker-net/store"
)

// RemoveSandbox is `rm` for one sandbox (a name, ID or unique ID prefix);
// force ends its processes, as the command's last step.
func (e *Engine) RemoveSandbox(ref string, force bool) error {
	return e.mutate("rm "+ref, func(t *tx) error { return t.removeSandbox(ref, force) })
}

func (t *tx) removeSandbox(ref string, force bool) error {
	sb, err := t.sandbox(ref)
	if err != nil {
		return err
	}
	name := sb.Name
	ps, err := t.e.kernel.Processes(sb)
	if err != nil {
		return err
	}
	running := len(ps) > 0
	if running && !force {
		return fmt.Errorf("cannot remove sandbox %s: it has running processes: stop them or use rm -f", name)
	}
	steps, err := t.sandboxSteps(t.old, t.old.Sandboxes[name])
	if err != nil {
		return err
	}
	t.flushPorts(sb.Ports)
	delete(t.new.Sandboxes, name)
	t.teardown = append(t.teardown, releasing(plan.Reversed(steps))...)
	// What cannot be undone comes last, once nothing else can fail: the
	// log, then the processes.
	t.final = append(t.final, &removeLog{Path: t.e.opts.Paths.LogFile(name)})
	if running {
		stop := &nsnet.Stop{Sandbox: name, Pid: sb.Pid, PidStart: sb.PidStart}
		if sb.Mode != store.ModeHost {
			stop.Pid, stop.PidStart = 0, 0
			stop.Netns = name
			if stop.Inode, err = t.e.kernel.NetnsInode(name); err != nil {
				return fmt.Errorf("sandbox %s: %w", name, err)
			}
		}
		t.final = append(t.final, stop)
	}
	return nil
}

func init() { plan.Register("log-remove", func() plan.Step { return &removeLog{} }) }

// removeLog deletes a sandbox's log; undoing it writes back what it held.
type removeLog struct {
	Path string `json:"path"`

	prev []byte
	had  bool
}

func (s *removeLog) Kind() string           { return "log-remove" }
func (s *removeLog) Commands() []string     { return []string{"rm -f " + plan.Quote(s.Path)} }
func (s *removeLog) UndoCommands() []string { return []string{"# put back the log " + s.Path} }

func (s *removeLog) Apply(*plan.Context) error {
	b, err := rawfile.Read(s.Path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s.prev, s.had = b, err == nil
	if err := os.Remove(s.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rm %s: %w", s.Path, err)
	}
	return nil
}

func (s *removeLog) Undo(*plan.Context) error {
	if !s.had {
		return nil
	}
	return os.WriteFile(s.Path, s.prev, 0o644)
}
