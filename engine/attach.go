package engine

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// Attach runs a command on this terminal and returns its status; started,
// if set, learns its pid. Ctrl-C and Ctrl-\ go to the program (it shares
// the terminal's process group); this process waits for it and passes
// SIGTERM on.
func Attach(p *exec.Cmd, started func(int)) (int, error) {
	p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := p.Start(); err != nil {
		return 0, err
	}
	if started != nil {
		started(p.Process.Pid)
	}
	return wait(p, sigs)
}

// Wait is Attach for a program already started on this terminal (run
// --rm's supervisor, which the transaction started).
func Wait(p *exec.Cmd) (int, error) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return wait(p, sigs)
}

// wait passes SIGTERM on to p (Ctrl-C and Ctrl-\ reach it through the
// terminal) and returns its status.
func wait(p *exec.Cmd, sigs chan os.Signal) (int, error) {
	go func() {
		for s := range sigs {
			if s == syscall.SIGTERM {
				_ = p.Process.Signal(s)
			}
		}
	}()
	return exitStatus(p.Wait())
}

func exitStatus(err error) (int, error) {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// RunAttached runs cmd in a sandbox on this terminal: a host-mode
// sandbox's main process is recorded when record is set (run; exec does
// not replace it).
func (e *Engine) RunAttached(sb *store.Sandbox, cmd []string, record bool) (int, error) {
	p, err := e.Command(sb, cmd)
	if err != nil {
		return 0, err
	}
	return Attach(p, func(pid int) {
		if record && sb.Mode == store.ModeHost {
			_ = e.RecordPid(sb.ID, pid)
		}
	})
}

// Supervise is a --rm sandbox's supervisor: it runs the command, then
// removes the sandbox it was started for, known by its ID, so a sandbox
// removed meanwhile whose name was taken again is left alone. A closed
// terminal (SIGHUP) and Ctrl-C reach the command, not the supervisor,
// which outlives the client that started it.
func (e *Engine) Supervise(id string, cmd []string) (int, error) {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT)
	var sb *store.Sandbox
	if err := e.View(func(s *store.State) error {
		var err error
		sb, err = model.FindSandbox(s, id)
		if err == nil && sb.ID != id {
			err = &model.NotFoundError{Kind: "sandbox", Name: id}
		}
		return err
	}); err != nil {
		return 0, err
	}
	p, err := e.Command(sb, cmd)
	if err != nil {
		return 0, err
	}
	p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	defer signal.Stop(sigs)
	code := 0
	if err := p.Start(); err != nil {
		code = 126
	} else {
		go func() {
			for s := range sigs {
				_ = p.Process.Signal(s)
			}
		}()
		if sb.Mode == store.ModeHost {
			_ = e.RecordPid(id, p.Process.Pid)
		}
		code, _ = exitStatus(p.Wait())
	}
	var nf *model.NotFoundError
	if err := e.RemoveSandbox(id, true); err != nil && !errors.As(err, &nf) {
		return 125, err
	}
	return code, nil
}

// Logs copies a sandbox's log to w; with follow it keeps copying until
// the sandbox's processes end or it is removed, as docker logs -f ends
// with its container.
func (e *Engine) Logs(w io.Writer, sb *store.Sandbox, follow bool) error {
	path := e.opts.Paths.LogFile(sb.Name)
	var f *os.File
	open := func() error {
		if f != nil {
			return nil
		}
		var err error
		if f, err = os.Open(path); errors.Is(err, os.ErrNotExist) {
			f = nil
			return nil
		}
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	copyNew := func() error {
		if err := open(); err != nil || f == nil {
			return err
		}
		_, err := io.Copy(w, f)
		return err
	}
	if err := copyNew(); err != nil || !follow {
		return err
	}
	for {
		time.Sleep(100 * time.Millisecond)
		if err := copyNew(); err != nil {
			return err
		}
		var cur *store.Sandbox
		if err := e.View(func(s *store.State) error {
			cur = s.Sandboxes[sb.Name]
			return nil
		}); err != nil || cur == nil || cur.ID != sb.ID {
			return err
		}
		if running, _ := Running(cur); !running {
			return copyNew()
		}
	}
}

func init() { plan.Register("attached-start", func() plan.Step { return &startAttached{} }) }

// startAttached starts run --rm's supervisor on this terminal, the
// transaction's last step: it runs the command and removes the sandbox
// when the command ends, even if the client is killed right after the
// command returns. Undone (the transaction rolled back) it is killed.
type startAttached struct {
	Show string `json:"show"`

	Cmd *exec.Cmd `json:"-"`
}

func (s *startAttached) Kind() string { return "attached-start" }
func (s *startAttached) Commands() []string {
	return []string{s.Show + "  # on this terminal: runs the command, then removes the sandbox"}
}
func (s *startAttached) UndoCommands() []string { return []string{"# the supervisor is killed"} }
func (s *startAttached) Apply(*plan.Context) error {
	s.Cmd.Stdin, s.Cmd.Stdout, s.Cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return s.Cmd.Start()
}
func (s *startAttached) Undo(*plan.Context) error {
	if s.Cmd != nil && s.Cmd.Process != nil {
		_ = s.Cmd.Process.Kill()
		_, _ = s.Cmd.Process.Wait()
	}
	return nil
}
