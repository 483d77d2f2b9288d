package resolver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/store"
)

// Pid returns the running resolver's pid, found by its pid file and its
// command line (a pid reused by another program is not it); 0 when none
// runs.
func Pid(p store.Paths) int {
	b, err := os.ReadFile(pidPath(p))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.Contains(string(cmd), Command+"\x00"+p.Lib+"\x00"+p.Run) {
		return 0
	}
	if !processAlive(pid) {
		return 0
	}
	return pid
}

// Args is the resolver's command line, after this binary.
func Args(p store.Paths) []string { return []string{Command, p.Lib, p.Run} }

// Start starts the resolver (self is this binary), in a session of its
// own with its log under the run directory, and waits until it answers.
func Start(self string, p store.Paths) error {
	log, err := os.OpenFile(p.ResolverLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start the resolver: %w", err)
	}
	defer log.Close()
	c := exec.Command(self, Args(p)...)
	c.Stdout, c.Stderr = log, log
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start the resolver: %w", err)
	}
	_ = c.Process.Release()
	for i := 0; i < 200; i++ {
		if conn, err := net.DialTimeout("unix", socketPath(p), time.Second); err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("the resolver did not start: see %s", p.ResolverLog())
}

// request sends one line to the resolver and reads its answer.
func request(p store.Paths, line string) error {
	_, err := ask(p, line)
	return err
}

// ask sends one line and returns what follows the answer's "ok".
func ask(p store.Paths, line string) (string, error) {
	conn, err := net.DialTimeout("unix", socketPath(p), 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("the resolver does not answer: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(conn, line); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("the resolver: %w", err)
	}
	r := strings.TrimSpace(reply)
	if r != "ok" && !strings.HasPrefix(r, "ok ") {
		return "", errors.New("the resolver: " + strings.TrimPrefix(r, "error "))
	}
	return strings.TrimPrefix(strings.TrimPrefix(r, "ok"), " "), nil
}

// Lease is the host's lease in the cluster store, which the cluster agent
// in the same process keeps alive: a command writes its endpoints under
// it.
func Lease(p store.Paths) (int64, error) {
	v, err := ask(p, cluster.LeaseLine)
	if err != nil {
		return 0, err
	}
	return cluster.ParseLease(v)
}

// Sync makes the resolver read the record files a command changed (none
// given: every record), serving the sandboxes they name and no others,
// before it answers.
func Sync(p store.Paths, files []string) error {
	return request(p, strings.Join(append([]string{"sync"}, files...), "\x00"))
}

// Stop ends the resolver, found by name when its files are gone (a
// reset without records), waits (at most 2 s) until it is gone, and
// removes its files, its log too: nothing needs it any more.
func Stop(p store.Paths) error {
	pids := ByName(p)
	for _, pid := range pids {
		if request(p, "stop") != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		for i := 0; i < 200 && processAlive(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, f := range []string{p.ResolverPid(), p.ResolverSocket(), p.ResolverLog()} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// ByName finds the resolver processes of a state directory by their
// command line.
func ByName(p store.Paths) []int {
	entries, _ := os.ReadDir("/proc")
	want := Command + "\x00" + p.Lib + "\x00" + p.Run
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(cmd), want) {
			out = append(out, pid)
		}
	}
	return out
}

func processAlive(pid int) bool {
	st, err := nsnet.StartTime(pid)
	return err == nil && nsnet.Alive(pid, st)
}
