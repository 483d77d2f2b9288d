package engine

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/iptables"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

// action is one thing reset removes.
type action struct {
	cmd string
	do  func() error
}

// Reset removes everything minidocker-net ever created on the host, found
// by what marks it rather than by the records (which may be corrupt or
// gone): interfaces named mdn*, namespaces whose lo carries our marker,
// chains named MINIDOCKER* and the jumps into them, and the records. Host
// settings (ip_forward, the FORWARD policy) go back only when the records
// say what they were. It returns the shell equivalent of what it did.
func (e *Engine) Reset() ([]string, error) {
	st, err := store.Open(e.opts.Paths, !e.opts.DryRun)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	host := store.Host{}
	records := false
	if s, err := st.Load(); err == nil {
		host = s.Host
		records = len(s.Networks) > 0 || len(s.Sandboxes) > 0 || len(host.TablesCreated) > 0 || host.ForwardingEnabled
	}
	rs, err := iptables.Save()
	if err != nil {
		return nil, err
	}
	// Without records nobody can say which tables we created: one that
	// holds chains of ours and is empty without them goes too; a table
	// the host had already (an empty filter table made by 'iptables -P
	// FORWARD ACCEPT', say) holds none of ours and stays.
	tables := host.TablesCreated
	if !records {
		tables = nil
		for _, table := range iptables.Tables {
			if t := rs.Tables[table]; t != nil && t.HoldsOurs() {
				tables = append(tables, table)
			}
		}
	}
	var acts []action
	var errs []error

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
		n := n
		if ps, _ := nsnet.Processes(n); len(ps) > 0 {
			acts = append(acts, action{fmt.Sprintf("ip netns pids %s | xargs kill -9", n), func() error { return nsnet.Kill(n) }})
		}
	}
	if s, err := st.Load(); err == nil {
		for _, sb := range s.Sandboxes {
			if sb.Mode == store.ModeHost && nsnet.Alive(sb.Pid, sb.PidStart) {
				sb := sb
				stop := &nsnet.Stop{Sandbox: sb.Name, Pid: sb.Pid, PidStart: sb.PidStart}
				acts = append(acts, action{stop.Commands()[0], func() error { return stop.Apply(nil) }})
			}
		}
	}

	// Rules: jumps out of built-in chains, then our chains.
	policy := ""
	if host.ForwardingEnabled {
		policy = host.ForwardPolicyWas
	}
	if rm := iptables.FindOwned(rs, policy); len(rm.Commands) > 0 {
		acts = append(acts, action{strings.Join(rm.Commands, "\n"), rm.Apply})
	}
	if len(tables) > 0 {
		ctx := plan.NewContext(e.opts.Verbose)
		defer ctx.Close()
		for _, table := range tables {
			s := &iptables.CreatedTable{Table: table}
			acts = append(acts, action{s.UndoCommands()[0], func() error {
				iptables.ForgetRuleset(ctx)
				return s.Undo(ctx)
			}})
		}
	}

	// Interfaces: veths before bridges, and only bridges and veths.
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Type() == "veth" && links[j].Type() != "veth" })
	for _, l := range links {
		a := l.Attrs()
		if !strings.HasPrefix(a.Name, bridge.Prefix) || (l.Type() != "bridge" && l.Type() != "veth") {
			continue
		}
		l := l
		acts = append(acts, action{"ip link del " + a.Name, func() error {
			if err := netlink.LinkDel(l); err != nil && !bridge.NotFound(err) {
				return err
			}
			return nil
		}})
	}
	for _, n := range ours {
		n := n
		acts = append(acts, action{"ip netns del " + n + " && rm -rf " + etcfiles.Dir(n), func() error {
			if err := nsnet.Remove(n); err != nil {
				return err
			}
			return os.RemoveAll(etcfiles.Dir(n))
		}})
	}
	if host.ForwardingEnabled {
		acts = append(acts, action{"sysctl -w net.ipv4.ip_forward=0", func() error { return sysctl.Set("net.ipv4.ip_forward", "0") }})
	}

	// Records last: if anything above failed, they still say what to retry.
	for _, p := range append(st.NetworkFiles(), st.RunFiles()...) {
		acts = append(acts, action{"rm " + p, func() error { return os.Remove(p) }})
	}

	// Last, what the first command made for itself: the state directories
	// and the lock (a command waiting on it takes the lock again on a new
	// file), and the namespace directories when nothing is left in them.
	// Whatever else is in them stays.
	for _, p := range st.Skeleton() {
		if fi, err := os.Stat(p); err == nil {
			p, cmd := p, "rmdir "+p
			if !fi.IsDir() {
				cmd = "rm " + p
			}
			acts = append(acts, action{cmd, func() error { return removeIfEmpty(p) }})
		}
	}
	// Namespaces and their /etc directories go above, so these are empty
	// then unless someone else uses them.
	if emptyOnceOursGo(nsnet.RunDir, ours) {
		acts = append(acts, action{"umount " + nsnet.RunDir + " && rmdir " + nsnet.RunDir, nsnet.ReleaseRunDir})
	}
	if emptyOnceOursGo(nsnet.EtcDir, ours) {
		acts = append(acts, action{"rmdir " + nsnet.EtcDir, func() error { return removeIfEmpty(nsnet.EtcDir) }})
	}

	var done []string
	for _, a := range acts {
		done = append(done, a.cmd)
		if e.opts.DryRun {
			continue
		}
		if e.opts.Verbose != nil {
			fmt.Fprintln(e.opts.Verbose, a.cmd)
		}
		if err := a.do(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", strings.SplitN(a.cmd, "\n", 2)[0], err))
		}
	}
	return done, errors.Join(errs...)
}

// removeIfEmpty removes a file or an empty directory; a directory with
// something in it, or a mount point, stays.
func removeIfEmpty(path string) error {
	err := os.Remove(path)
	if err == nil || errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) || errors.Is(err, unix.EBUSY) {
		return nil
	}
	return err
}

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
