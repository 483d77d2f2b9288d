package nsnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// EtcDir holds a sandbox's hosts, resolv.conf and hostname, which
// `ip netns exec` bind-mounts over /etc, and so does Enter.
const EtcDir = "/etc/netns"

// EnterCommand is the hidden command that runs a program inside a sandbox.
const EnterCommand = "__enter"

// EnterArgs returns the arguments that make this binary run cmd inside the
// named sandbox with the given hostname.
func EnterArgs(name, hostname string, cmd []string) []string {
	return append([]string{EnterCommand, name, hostname, "--"}, cmd...)
}

// Enter runs in a freshly started process (see EnterArgs): it joins the
// sandbox's network namespace, takes a private mount and UTS namespace,
// binds the sandbox's /etc files as `ip netns exec` does, sets the hostname
// and executes the program. It returns only on error.
func Enter(args []string) error {
	if len(args) < 4 || args[2] != "--" {
		return errors.New("usage: " + EnterCommand + " NAME HOSTNAME -- CMD [ARG...]")
	}
	name, hostname, cmd := args[0], args[1], args[3:]
	path, err := exec.LookPath(cmd[0])
	if err != nil {
		return fmt.Errorf("%s: executable file not found in $PATH", cmd[0])
	}
	runtime.LockOSThread() // the process image is replaced from this thread
	fd, err := unix.Open(Path(name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", name, err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", name, err)
	}
	unix.Close(fd)
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("unshare mount and uts: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	if err := bindEtc(name); err != nil {
		return err
	}
	// /sys shows the interfaces of the namespace that mounted it.
	if unix.Unmount("/sys", unix.MNT_DETACH) == nil {
		_ = unix.Mount(name, "/sys", "sysfs", 0, "")
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return fmt.Errorf("sethostname %s: %w", hostname, err)
	}
	return syscall.Exec(path, cmd, os.Environ())
}

func bindEtc(name string) error {
	dir := filepath.Join(EtcDir, name)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		src, dst := filepath.Join(dir, e.Name()), filepath.Join("/etc", e.Name())
		if err := unix.Mount(src, dst, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over %s: %w", src, dst, err)
		}
	}
	return nil
}

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
	want := "net:[" + strconv.FormatUint(ino, 10) + "]"
	all, err := byNamespace()
	if err != nil {
		return nil, err
	}
	return all[want], nil
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
	for i := 0; i < 100; i++ {
		ps, err := Processes(name)
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
