package engine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/minidocker-net/minidocker-net/nsnet"
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

// Stop ends the sandbox's processes with SIGKILL, as docker rm -f does.
func Stop(sb *store.Sandbox) error {
	if sb.Mode == store.ModeHost {
		if nsnet.Alive(sb.Pid, sb.PidStart) {
			_ = syscall.Kill(-sb.Pid, syscall.SIGKILL) // its session's process group
			_ = syscall.Kill(sb.Pid, syscall.SIGKILL)
		}
		return nil
	}
	return nsnet.Kill(sb.Name)
}

// Command returns the command that runs cmd inside the sandbox: through the
// hidden __enter command of this binary, or directly for a sandbox on the
// host network.
func Command(sb *store.Sandbox, cmd []string) (*exec.Cmd, error) {
	if len(cmd) == 0 {
		return nil, errors.New("no command given")
	}
	if _, err := exec.LookPath(cmd[0]); err != nil {
		return nil, fmt.Errorf("%s: executable file not found in $PATH", cmd[0])
	}
	if sb.Mode == store.ModeHost {
		return exec.Command(cmd[0], cmd[1:]...), nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(self, nsnet.EnterArgs(sb.Name, sb.Hostname, cmd)...), nil
}

// Detach starts cmd in the sandbox in the background, in its own session,
// with its output kept in the sandbox's log file.
func (e *Engine) Detach(sb *store.Sandbox, cmd []string) (*exec.Cmd, error) {
	c, err := Command(sb, cmd)
	if err != nil {
		return nil, err
	}
	log, err := os.OpenFile(e.opts.Paths.LogFile(sb.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer log.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	c.Stdin, c.Stdout, c.Stderr = devnull, log, log
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start %s in sandbox %s: %w", cmd[0], sb.Name, err)
	}
	return c, nil
}

// RecordPid remembers a host-mode sandbox's main process, which cannot be
// found by namespace.
func (e *Engine) RecordPid(name string, pid int) error {
	start, err := nsnet.StartTime(pid)
	if err != nil {
		return nil // it already ended
	}
	return e.mutate("record pid of "+name, func(t *tx) error {
		sb, err := t.sandbox(name)
		if err != nil {
			return err
		}
		sb.Pid, sb.PidStart = pid, start
		return nil
	})
}
