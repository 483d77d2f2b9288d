package engine

import (
	"errors"
	"fmt"
	"github.com/minidocker-net/minidocker-net/firewall"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/hostd"
	"github.com/minidocker-net/minidocker-net/hostlink"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

// Reset removes everything minidocker-net ever created on the host, found
// by what marks it rather than by the records (which may be corrupt or
// gone): interfaces named mdn*, namespaces whose lo carries our marker,
// what the firewall backend owns, and the records. Host settings
// (ip_forward, the FORWARD policy) go back only when the records say what
// they were. It is a plan like any other, applied best-effort (a reset is
// not rolled back); it returns the number of steps.
func (e *Engine) Reset() (int, error) {
	st, err := store.Open(e.opts.Paths, !e.opts.DryRun)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	p, err := e.resetPlan(st)
	if err != nil {
		return 0, err
	}
	if e.opts.DryRun {
		p.Render(e.opts.Out)
		return len(p.Steps), nil
	}
	ctx := plan.NewContext(e.opts.Verbose)
	defer ctx.Close()
	return len(p.Steps), p.Converge(ctx)
}

func (e *Engine) resetPlan(st *store.Store) (*plan.Plan, error) {
	p := &plan.Plan{Title: "reset"}
	host := store.Host{}
	records := false
	s, lerr := st.Load()
	if lerr == nil {
		host = s.Host
		records = len(s.Networks) > 0 || len(s.Sandboxes) > 0 || len(host.TablesCreated) > 0 || host.ForwardingEnabled
	}

	// The embedded DNS, found by name, then the sandboxes' processes, so
	// that namespaces can go.
	if cfg, ok, _ := cluster.Load(st.Paths); ok {
		// Through the host's process, before it stops.
		p.Add(&clusterReset{Config: cfg, Paths: st.Paths})
	}
	if len(hostd.ByName(st.Paths)) > 0 {
		p.Add(&stopResolver{Paths: st.Paths})
	}
	// Processes first, so that namespaces can go.
	names, err := nsnet.List()
	if err != nil {
		return nil, err
	}
	var ours []string
	for _, n := range names {
		if nsnet.IsOurs(n) {
			ours = append(ours, n)
		}
	}
	for _, n := range ours {
		if ps, _ := nsnet.Processes(n); len(ps) > 0 {
			if ino, err := nsnet.Inode(n); err == nil {
				p.Add(&nsnet.Stop{Sandbox: n, Netns: n, Inode: ino})
			}
		}
	}
	if lerr == nil {
		for _, name := range s.SandboxNames() {
			if sb := s.Sandboxes[name]; sb.Mode == store.ModeHost && nsnet.Alive(sb.Pid, sb.PidStart) {
				p.Add(&nsnet.Stop{Sandbox: sb.Name, Pid: sb.Pid, PidStart: sb.PidStart})
			}
		}
	}

	// The firewall: jumps out of built-in chains, our chains, the tables
	// we made.
	// Both backends' objects, found by name: a host may have used either.
	backend := firewall.IPTables
	if lerr == nil {
		backend = hostBackend(s)
	}
	for _, b := range []string{firewall.IPTables, firewall.NFTables} {
		for _, v6 := range []bool{false, true} {
			f := familyOf(&host, v6, e.firewall(b, firewall.IPv4), e.firewall(b, firewall.IPv6))
			policy, tables := "", []string(nil)
			if b == backend {
				tables = *f.tables
				if *f.enabled {
					policy = *f.policy
				}
			}
			steps, err := f.fw.Remove(policy, tables, records && b == backend)
			if err != nil {
				return nil, err
			}
			p.Add(steps...)
		}
	}

	// Interfaces: veths before bridges, and only bridges and veths.
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	sort.SliceStable(links, func(i, j int) bool { return links[i].Type() == "veth" && links[j].Type() != "veth" })
	for _, l := range links {
		a := l.Attrs()
		switch {
		case !strings.HasPrefix(a.Name, bridge.Prefix):
		case l.Type() == "veth":
			p.Add(plan.Reverse{Inner: &nsnet.Veth{Host: a.Name}})
		case l.Type() == "bridge":
			p.Add(plan.Reverse{Inner: &bridge.Create{Name: a.Name}})
		case l.Type() == "dummy": // a parentless macvlan or ipvlan network's
			p.Add(plan.Reverse{Inner: &hostlink.Create{Name: a.Name, Type: "dummy"}})
		}
	}
	// The VLAN links we made carry the user's names: the records know them.
	if lerr == nil {
		for _, name := range s.NetworkNames() {
			if n := s.Networks[name]; n.ParentCreated && !strings.HasPrefix(driver.Parent(n), bridge.Prefix) {
				p.Add(plan.Reversed(driver.ParentSteps(n))...)
			}
		}
	}
	for _, n := range ours {
		p.Add(plan.Reverse{Inner: &nsnet.Netns{Name: n}}, plan.Reverse{Inner: &etcfiles.MakeDir{Sandbox: n}})
	}
	for _, v6 := range []bool{false, true} {
		if f := familyOf(&host, v6, nil, nil); *f.enabled {
			p.Add(plan.Reverse{Inner: &sysctl.Step{Key: f.sysctl, Value: "1", Old: "0"}})
		}
	}

	// Records last: if anything above failed, they still say what to retry.
	for _, f := range append(st.LibFiles(), st.RunFiles()...) {
		p.Add(&removePath{Path: f})
	}
	// Last, what the first command made for itself: the state directories
	// and the lock (a command waiting on it takes the lock again on a new
	// file), and the namespace directories when nothing is left in them.
	// Whatever else is in them stays.
	for _, f := range st.Skeleton() {
		if fi, err := os.Stat(f); err == nil {
			p.Add(&removePath{Path: f, Dir: fi.IsDir()})
		}
	}
	// Namespaces and their /etc directories go above, so these are empty
	// then unless someone else uses them.
	if emptyOnceOursGo(nsnet.RunDir, ours) {
		p.Add(&releaseRunDir{})
	}
	if emptyOnceOursGo(nsnet.EtcDir, ours) {
		p.Add(&removePath{Path: nsnet.EtcDir, Dir: true})
	}
	return p, nil
}

func init() {
	plan.Register("path-remove", func() plan.Step { return &removePath{} })
	plan.Register("netns-dir-release", func() plan.Step { return &releaseRunDir{} })
}

// removePath removes a file, or a directory when it is empty: one with
// something in it, or a mount point, stays. Reset is not undone.
type removePath struct {
	Path string `json:"path"`
	Dir  bool   `json:"dir,omitempty"`
}

func (s *removePath) Kind() string { return "path-remove" }

// Commands tolerate what Apply does: a path already gone, a directory
// with something in it or a mount point.
func (s *removePath) Commands() []string {
	if s.Dir {
		return []string{"rmdir " + plan.Quote(s.Path) + " 2>/dev/null || true"}
	}
	return []string{"rm -f " + plan.Quote(s.Path)}
}
func (s *removePath) UndoCommands() []string   { return []string{"# reset is not undone"} }
func (s *removePath) Undo(*plan.Context) error { return nil }

func (s *removePath) Apply(*plan.Context) error {
	err := os.Remove(s.Path)
	if err == nil || errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) || errors.Is(err, unix.EBUSY) {
		return nil
	}
	return fmt.Errorf("remove %s: %w", s.Path, err)
}

// releaseRunDir undoes the shared bind mount of /var/run/netns that the
// first namespace made, once no namespace is left in it.
type releaseRunDir struct{}

func (s *releaseRunDir) Kind() string { return "netns-dir-release" }
func (s *releaseRunDir) Commands() []string {
	return []string{"umount " + nsnet.RunDir + " && rmdir " + nsnet.RunDir}
}
func (s *releaseRunDir) UndoCommands() []string    { return []string{"# reset is not undone"} }
func (s *releaseRunDir) Undo(*plan.Context) error  { return nil }
func (s *releaseRunDir) Apply(*plan.Context) error { return nsnet.ReleaseRunDir() }

// emptyOnceOursGo reports whether a directory exists and holds nothing but
// entries named after our namespaces.
func emptyOnceOursGo(dir string, ours []string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !slices.Contains(ours, e.Name()) {
			return false
		}
	}
	return true
}

func init() { plan.Register("cluster-reset", func() plan.Step { return &clusterReset{} }) }

// clusterReset is reset's part in the cluster store: this host's keys go
// (its lease may outlive a killed agent), and every key of ours when no
// other host is left. A store that does not answer is warned about: the
// host's lease runs out on its own.
type clusterReset struct {
	Config cluster.Config `json:"config"`
	Paths  store.Paths    `json:"paths"`
}

func (s *clusterReset) Kind() string { return "cluster-reset" }
func (s *clusterReset) Commands() []string {
	ctl := "etcdctl --endpoints " + strings.Join(s.Config.Endpoints(), ",")
	return []string{
		"# this host's keys (" + s.Config.Host + "), and every key under " + cluster.Prefix + " when no other host is left:",
		ctl + " del " + cluster.HostKey(s.Config.Host) + "  # and its endpoints under " + cluster.Prefix + "endpoints/",
		"[ -z \"$(" + ctl + " get --prefix --keys-only " + cluster.Prefix + "hosts/)\" ] && " + ctl + " del --prefix " + cluster.Prefix,
	}
}
func (s *clusterReset) UndoCommands() []string   { return []string{"# reset is not undone"} }
func (s *clusterReset) Undo(*plan.Context) error { return nil }
func (s *clusterReset) Apply(*plan.Context) error {
	var err error
	if hostd.Pid(s.Paths) == 0 {
		err = hostd.Start(s.Paths)
	}
	if err == nil {
		err = hostd.Store{Paths: s.Paths}.ResetHost(s.Config.Host)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "WARNING: the cluster store: %v (this host's lease runs out within %d s)\n", err, cluster.LeaseTTL)
	}
	return nil
}
