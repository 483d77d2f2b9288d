package engine

import (
	"fmt"
	"github.com/minidocker-net/minidocker-net/nft"
	"golang.org/x/sys/unix"
	"os"
	"strings"

	"github.com/minidocker-net/minidocker-net/hostd"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// needsResolver reports whether a sandbox of a state is served by the
// embedded DNS.
func needsResolver(s *store.State) bool {
	for _, sb := range s.Sandboxes {
		if model.DNSServed(s, sb) {
			return true
		}
	}
	return false
}

// ResolverPid is the embedded DNS's pid, 0 when it does not run.
func (e *Engine) ResolverPid() int { return hostd.Pid(e.opts.Paths) }

// syncResolver makes the host's process (the embedded DNS, and the
// cluster agent) current with the records a command wrote before the
// command returns: it starts the process when a sandbox needs it or the
// host is in a cluster and none runs (a dead one included), tells a
// running one which record files changed (all, for a repair), and stops
// it with the last sandbox it served when the host is in no cluster.
func (e *Engine) syncResolver(s *store.State, changes []store.FileChange, all bool) error {
	p := e.opts.Paths
	if !needsResolver(s) && !joined(p) {
		// Its files tell whether one runs (reset finds one without them).
		if fileExists(p.ResolverPid()) || fileExists(p.ResolverSocket()) {
			return hostd.Stop(p)
		}
		return nil
	}
	if pid := hostd.Pid(p); pid != 0 && hostd.Stale(pid) {
		// Upgraded under it: the new program takes over.
		if err := hostd.Stop(p); err != nil {
			return fmt.Errorf("the embedded DNS runs an older minidocker-netd: %w", err)
		}
	}
	if hostd.Pid(p) == 0 {
		return hostd.Start(p) // it reads every record before it answers
	}
	var files []string
	for _, c := range changes {
		if strings.HasSuffix(c.Path, ".json") && c.Path != p.HostFile() {
			files = append(files, c.Path)
		}
	}
	if len(files) == 0 && !all {
		return nil
	}
	if err := hostd.Sync(p, files); err != nil {
		return fmt.Errorf("the embedded DNS: %w", err)
	}
	return nil
}

// handOver gives the long-running process, when one runs, the command's
// nf_tables socket to close: its release waits for the kernel to free
// what the command deleted, which the process can wait for instead.
func (e *Engine) handOver() {
	fd, ok := nft.Socket()
	if !ok {
		return
	}
	defer unix.Close(fd)
	if hostd.Pid(e.opts.Paths) != 0 {
		_ = hostd.Keep(e.opts.Paths, fd)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func init() { plan.Register("resolver-stop", func() plan.Step { return &stopResolver{} }) }

// stopResolver is reset's: it ends the embedded DNS, found by name.
type stopResolver struct {
	Paths store.Paths `json:"paths"`
}

func (s *stopResolver) Kind() string { return "resolver-stop" }
func (s *stopResolver) Commands() []string {
	return []string{"pkill -f '" + strings.Join(hostd.Args(s.Paths), " ") + "'  # the embedded DNS"}
}
func (s *stopResolver) UndoCommands() []string    { return []string{"# reset is not undone"} }
func (s *stopResolver) Undo(*plan.Context) error  { return nil }
func (s *stopResolver) Apply(*plan.Context) error { return hostd.Stop(s.Paths) }
