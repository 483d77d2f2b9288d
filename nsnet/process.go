package nsnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/plan"
)

// Process is one process running in a sandbox.
type Process struct {
	Pid     int
	Command string
}

// Processes returns the processes whose network namespace is the sandbox's,
// however they were started (run, exec, or ip netns exec).
func Processes(name string) ([]Process, error) {
	ino, err := Inode(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	return InNamespace(ino)
}

// InNamespace returns the processes in the network namespace with that
// inode, mounted or not.
func InNamespace(ino uint64) ([]Process, error) {
	all, err := byNamespace()
	if err != nil {
		return nil, err
	}
	return all["net:["+strconv.FormatUint(ino, 10)+"]"], nil
}

// byNamespace lists every process by the text of its /proc/PID/ns/net link.
func byNamespace() (map[string][]Process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[string][]Process{}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		link, err := os.Readlink("/proc/" + e.Name() + "/ns/net")
		if err != nil {
			continue // gone, or a zombie
		}
		out[link] = append(out[link], Process{Pid: pid, Command: cmdline(pid)})
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Pid < ps[j].Pid })
	}
	return out, nil
}

func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// Kill ends every process in the sandbox with SIGKILL, as docker rm -f
// does, and waits briefly until they are gone.
func Kill(name string) error {
	ino, err := Inode(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return killIn(name, ino)
}

func killIn(name string, ino uint64) error {
	for i := 0; i < 100; i++ {
		ps, err := InNamespace(ino)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return nil
		}
		for _, p := range ps {
			_ = unix.Kill(p.Pid, unix.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("processes in sandbox %s did not exit after SIGKILL", name)
}

// StartTime returns a process's start time in clock ticks since boot, which
// tells a live process from a later one that reuses its pid.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, errors.New("unexpected /proc stat format")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Alive reports whether pid still runs the process that started at start.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := StartTime(pid)
	if err != nil || st != start {
		return false
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func init() {
	plan.Register("process-start", func() plan.Step { return &Start{} })
	plan.Register("process-kill", func() plan.Step { return &Stop{} })
}

// Start starts a sandbox's program in the background, in a session of its
// own, its output appended to a log. It is the last step of run -d, taken
// under the command's lock, so no other command sees the sandbox without
// it. Undoing it ends what it started.
type Start struct {
	Sandbox string   `json:"sandbox"`
	Netns   string   `json:"netns,omitempty"` // "": it runs on the host
	Args    []string `json:"args"`            // the whole command line, program first
	Env     []string `json:"env,omitempty"`   // added to this process's environment
	Log     string   `json:"log"`
	// Show is the command as a user would type it, for Commands.
	Show string `json:"show"`

	// Pid and PidStart are learned when it starts; Started receives them
	// for the sandbox's record.
	Pid      int                         `json:"pid,omitempty"`
	PidStart uint64                      `json:"pid_start,omitempty"`
	Started  func(pid int, start uint64) `json:"-"`
}

func (s *Start) Kind() string { return "process-start" }
func (s *Start) Commands() []string {
	return []string{"setsid " + s.Show + " </dev/null >>" + s.Log + " 2>&1 &"}
}
func (s *Start) UndoCommands() []string {
	if s.Netns != "" {
		return []string{"ip netns pids " + s.Netns + " | xargs -r kill -9"}
	}
	return []string{"kill -9 -- -$!  # the session it started"}
}

func (s *Start) Apply(*plan.Context) error {
	log, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", s.Sandbox, err)
	}
	defer log.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	c := exec.Command(s.Args[0], s.Args[1:]...)
	c.Env = append(os.Environ(), s.Env...)
	c.Stdin, c.Stdout, c.Stderr = devnull, log, log
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s in sandbox %s: %w", s.Args[0], s.Sandbox, err)
	}
	s.Pid = c.Process.Pid
	s.PidStart, _ = StartTime(s.Pid)
	_ = c.Process.Release()
	if s.Started != nil {
		s.Started(s.Pid, s.PidStart)
	}
	return nil
}

// Undo ends the session it started and, for a sandbox with a namespace of
// its own, whatever runs in it (after a crash the pid is not known, the
// namespace still is).
func (s *Start) Undo(*plan.Context) error {
	if Alive(s.Pid, s.PidStart) {
		_ = unix.Kill(-s.Pid, unix.SIGKILL)
		_ = unix.Kill(s.Pid, unix.SIGKILL)
	}
	if s.Netns != "" {
		return Kill(s.Netns)
	}
	return nil
}

// Stop ends a sandbox's processes with SIGKILL, as docker rm -f does:
// everything in its network namespace, known by the namespace's inode so
// that it works after the namespace was unmounted earlier in the plan, or
// a host-mode sandbox's main process and its session. It is the last step
// of rm: a killed process cannot be brought back, so nothing may fail
// after it.
type Stop struct {
	Sandbox  string `json:"sandbox"`
	Netns    string `json:"netns,omitempty"`
	Inode    uint64 `json:"inode,omitempty"`
	Pid      int    `json:"pid,omitempty"`
	PidStart uint64 `json:"pid_start,omitempty"`
}

func (s *Stop) Kind() string { return "process-kill" }
func (s *Stop) Commands() []string {
	if s.Netns != "" {
		// By inode: the namespace lost its name earlier in the plan.
		return []string{fmt.Sprintf(`for p in /proc/[0-9]*; do if [ "$(readlink $p/ns/net)" = "net:[%d]" ]; then kill -9 ${p#/proc/}; fi; done  # what runs in %s`, s.Inode, s.Netns)}
	}
	return []string{fmt.Sprintf("kill -9 -- -%d %d", s.Pid, s.Pid)}
}
func (s *Stop) UndoCommands() []string   { return []string{"# a killed process cannot be brought back"} }
func (s *Stop) Undo(*plan.Context) error { return nil }

func (s *Stop) Apply(*plan.Context) error {
	if s.Netns == "" {
		if Alive(s.Pid, s.PidStart) {
			_ = unix.Kill(-s.Pid, unix.SIGKILL) // its session's process group
			_ = unix.Kill(s.Pid, unix.SIGKILL)
		}
		return nil
	}
	return killIn(s.Sandbox, s.Inode)
}
