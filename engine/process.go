package engine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// Processes returns what runs in a sandbox: every process in its network
// namespace, or for a host-mode sandbox its main process if alive.
func Processes(sb *store.Sandbox) ([]nsnet.Process, error) {
	if sb.Mode == store.ModeHost {
		if nsnet.Alive(sb.Pid, sb.PidStart) {
			return []nsnet.Process{{Pid: sb.Pid, Command: fmt.Sprint(sb.Cmd)}}, nil
		}
		return nil, nil
	}
	return nsnet.Processes(sb.Name)
}

// Running reports whether anything runs in the sandbox.
func Running(sb *store.Sandbox) (bool, error) {
	ps, err := Processes(sb)
	return len(ps) > 0, err
}

// commandLine returns the command line that runs cmd inside the sandbox:
// through the hidden __enter command of this binary, or directly for a
// sandbox on the host network.
func (e *Engine) commandLine(sb *store.Sandbox, cmd []string) ([]string, error) {
	if len(cmd) == 0 {
		return nil, errors.New("no command given")
	}
	if _, err := exec.LookPath(cmd[0]); err != nil {
		return nil, fmt.Errorf("%s: executable file not found in $PATH", cmd[0])
	}
	if sb.Mode == store.ModeHost {
		return cmd, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return append([]string{self}, nsnet.EnterArgs(sb.Name, sb.Hostname, e.opts.Paths.LockFile(), cmd)...), nil
}

// Command returns the command that runs cmd inside the sandbox, with the
// sandbox's environment (run -e) added to this process's.
func (e *Engine) Command(sb *store.Sandbox, cmd []string) (*exec.Cmd, error) {
	line, err := e.commandLine(sb, cmd)
	if err != nil {
		return nil, err
	}
	c := exec.Command(line[0], line[1:]...)
	c.Env = append(os.Environ(), sb.Env...)
	return c, nil
}

// startStep is the step that starts cmd detached in the sandbox, its
// output kept in the sandbox's log.
func (e *Engine) startStep(sb *store.Sandbox, cmd []string, host bool) (*nsnet.Start, error) {
	line := cmd
	if !host {
		var err error
		if line, err = e.commandLine(sb, cmd); err != nil {
			return nil, err
		}
	}
	s := &nsnet.Start{Sandbox: sb.Name, Args: line, Env: sb.Env, Log: e.opts.Paths.LogFile(sb.Name), Show: shellJoin(cmd)}
	if sb.Mode != store.ModeHost && !host {
		s.Netns = sb.Name
		s.Show = "ip netns exec " + sb.Name + " " + s.Show
	}
	return s, nil
}

// Detach starts cmd in the sandbox in the background (exec -d), in its
// own session, with its output kept in the sandbox's log.
func (e *Engine) Detach(sb *store.Sandbox, cmd []string) error {
	s, err := e.startStep(sb, cmd, false)
	if err != nil {
		return err
	}
	return s.Apply(nil)
}

// RecordPid remembers a host-mode sandbox's main process, which cannot be
// found by namespace.
func (e *Engine) RecordPid(id string, pid int) error {
	start, err := nsnet.StartTime(pid)
	if err != nil {
		return nil // it already ended
	}
	return e.mutate("record pid of "+id, func(t *tx) error {
		sb, err := t.sandbox(id)
		if err != nil {
			return err
		}
		sb.Pid, sb.PidStart = pid, start
		return nil
	})
}

// shellJoin quotes words for a shell, as a printed command must be.
func shellJoin(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = plan.Quote(w)
	}
	return strings.Join(out, " ")
}

// EnterCommand is the hidden command that runs a program inside a
// sandbox; Enter is what it does (it returns only on error).
const EnterCommand = nsnet.EnterCommand

// Enter runs the hidden __enter command.
func Enter(args []string) error { return nsnet.Enter(args) }

// SandboxFiles says where a sandbox's /etc files and namespace are.
func SandboxFiles(name string) (resolv, hostname, hosts, netns string) {
	dir := etcfiles.Dir(name)
	return filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "hostname"), filepath.Join(dir, "hosts"), nsnet.Path(name)
}
