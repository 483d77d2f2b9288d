// Package hostd is the commands' side of the host's one long-running
// process, minidocker-netd: the embedded DNS, and the cluster agent of a
// host in a cluster (package resolver is the process itself). It finds
// the process by its pid file and command line, starts it on demand from
// the binary beside this one, asks it to read records again, and, for a
// host in a cluster, reads and writes the cluster store through it: the
// process holds the host's one connection to etcd, and no command links
// etcd's client (2.7 ms less at every start).
package hostd

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// Stale reports a running process whose program is not the one beside
// this binary any more: replaced by an upgrade (the kernel then calls the
// old file deleted), or another install's. It may not read the records
// this binary writes.
func Stale(pid int) bool {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return false
	}
	want, err := Path()
	if err != nil {
		return false
	}
	if resolved, err := filepath.EvalSymlinks(want); err == nil {
		want = resolved
	}
	return strings.HasSuffix(exe, " (deleted)") || exe != want
}

// Command is the process's first argument, which finds it by name.
const Command = "__resolver"

// Binary is the process's program: minidocker-netd, beside this one.
const Binary = "minidocker-netd"

func socketPath(p store.Paths) string { return p.ResolverSocket() }
func pidPath(p store.Paths) string    { return p.ResolverPid() }

// Args is the process's command line, after its program.
func Args(p store.Paths) []string { return []string{Command, p.Lib, p.Run} }

// Path is minidocker-netd's path: beside the running binary.
func Path() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	d := filepath.Join(filepath.Dir(self), Binary)
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("%s is not beside %s: install both (scripts/demo.sh and scripts/test.sh build them into bin/)", Binary, self)
	}
	return d, nil
}

// Start starts the process, in a session of its own with its log under
// the run directory, and waits until it answers.
func Start(p store.Paths) error {
	bin, err := Path()
	if err != nil {
		return fmt.Errorf("start the resolver: %w", err)
	}
	log, err := os.OpenFile(p.ResolverLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start the resolver: %w", err)
	}
	defer log.Close()
	c := exec.Command(bin, Args(p)...)
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
	if e, ok := strings.CutPrefix(r, unreachable); ok {
		var u cluster.UnreachableError
		var msg string
		if json.Unmarshal([]byte(e), &struct {
			Store *string `json:"store"`
			Err   *string `json:"err"`
		}{&u.Store, &msg}) == nil {
			u.Err = errors.New(msg)
			return "", &u
		}
	}
	if r == leaseLost {
		return "", cluster.ErrLeaseLost
	}
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

// KeepLine hands the long-running process open files to hold for a
// while and close: the command's nf_tables socket, whose release waits
// for the kernel to free what its batch deleted.
const KeepLine = "keep"

// Keep gives the process the file descriptor fd (passed over the socket,
// as SCM_RIGHTS); it closes it a second later. The caller's own copy may
// then be closed at once.
func Keep(p store.Paths, fd int) error {
	conn, err := net.DialTimeout("unix", socketPath(p), 2*time.Second)
	if err != nil {
		return fmt.Errorf("the resolver does not answer: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return errors.New("the resolver's socket is not a unix socket")
	}
	if _, _, err := uc.WriteMsgUnix([]byte(KeepLine+"\n"), unix.UnixRights(fd), nil); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || strings.TrimSpace(reply) != "ok" {
		return fmt.Errorf("the resolver did not take the file: %q %v", reply, err)
	}
	return nil
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
