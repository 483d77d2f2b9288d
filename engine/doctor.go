package engine

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nft"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

// Finding levels.
const (
	OK    = "ok"
	Info  = "info"
	Drift = "drift" // the kernel and the records disagree: doctor --fix
	Fault = "error" // the host needs a change minidocker-net will not make
)

// Finding is one line of doctor's report.
type Finding struct {
	Level string
	What  string
	Fix   string
}

type checker struct {
	out []Finding
}

func (c *checker) add(level, what, fix string) { c.out = append(c.out, Finding{level, what, fix}) }

// Doctor checks the host and compares the records with the kernel.
func (e *Engine) Doctor() ([]Finding, error) {
	st, err := store.Open(e.opts.Paths, false)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	c := &checker{}
	s, lerrs := st.LoadReadable()
	for _, lerr := range lerrs {
		c.add(Fault, lerr.Error(), "repair or remove the file; 'minidocker-net reset' removes everything by name")
	}
	if j, err := st.ReadJournal(); err != nil {
		c.add(Fault, err.Error(), "remove the journal file; then 'minidocker-net doctor' again")
	} else if j != nil {
		c.add(Drift, fmt.Sprintf("the command %q (pid %d) was interrupted half-way", j.Title, j.Pid),
			"the next command rolls it back; or 'minidocker-net doctor --fix'")
	}
	fw := e.Firewall(s)
	checkHost(c, s, fw)
	if _, err := fw.ForwardPolicy(); err != nil {
		fix := "install iptables: apt-get install iptables"
		if fw.Name() == firewall.NFTables {
			fix = "the kernel needs nf_tables (CONFIG_NF_TABLES)"
		}
		c.add(Fault, err.Error(), fix)
		return c.out, nil
	}
	ctx := plan.NewContext(nil)
	defer ctx.Close()
	checkNetworks(c, ctx, s)
	checkSandboxes(c, ctx, &tx{e: e, old: s, new: s, fw: fw}, s)
	checkResolver(c, e, s)
	checkCluster(c, e, s)
	if len(lerrs) > 0 {
		// What an unreadable record describes would look like a leftover:
		// nothing is called one (nor removed by --fix) until it is mended.
		c.add(Info, "not looking for leftovers (interfaces, namespaces, rules no record names) while a record cannot be read", "")
		return c.out, nil
	}
	checkRules(c, s, fw, model.Intent(s), "")
	if model.HasIPv6(s) {
		checkRules(c, s, e.Firewall6(s), model.Intent6(s), " (IPv6)")
	}
	checkOrphans(c, s)
	return c.out, nil
}

func checkHost(c *checker, s *store.State, fw firewall.Backend) {
	if fw.Name() == firewall.NFTables {
		// Netlink only: no program is needed, iptables' beside it is
		// looked at for what it may drop.
		c.add(OK, "firewall backend: nftables (tables ip and ip6 "+nft.TableName+", one netlink batch per command)", "")
	} else {
		c.add(OK, "firewall backend: iptables (chains MINIDOCKER*, one iptables-restore per command)", "")
		for _, bin := range []string{"iptables-save", "iptables-restore"} {
			if _, err := exec.LookPath(bin); err != nil {
				c.add(Fault, bin+" is missing", "apt-get install iptables")
			}
		}
	}
	if out, err := exec.Command("iptables", "--version").Output(); err == nil {
		backend := "legacy"
		other := "iptables-nft-save"
		if strings.Contains(string(out), "nf_tables") {
			backend, other = "nf_tables", "iptables-legacy-save"
		}
		c.add(OK, "iptables backend: "+backend, "")
		if o, err := exec.Command(other).Output(); err == nil && strings.Contains(string(o), "\n-A ") {
			c.add(Fault, "rules also exist in the other iptables backend ("+other+" shows some): two firewalls judge every packet",
				"keep one: move those rules to the "+backend+" backend, or 'update-alternatives --config iptables'")
		}
	}
	if _, err := os.Stat("/proc/sys/net/bridge"); err != nil {
		c.add(Fault, "br_netfilter is not loaded: icc=false and a sandbox reaching a published port on its own network need it", "modprobe br_netfilter")
	} else {
		c.add(OK, "br_netfilter is loaded", "")
	}
	fwd, _ := sysctl.Get("net.ipv4.ip_forward")
	switch {
	case model.Bridged(s) && fwd != "1":
		c.add(Drift, "bridge networks exist but net.ipv4.ip_forward is "+fwd+" (after a reboot?)", "minidocker-net restore")
	case fwd == "1":
		c.add(OK, "net.ipv4.ip_forward is 1", "")
	}
	if policy, err := fw.ForwardPolicy(); err == nil && policy == "DROP" {
		if s.Host.ForwardingEnabled {
			c.add(Info, "the FORWARD policy is DROP: set by minidocker-net when it turned ip_forward on (as Docker does); put back with the last network", "")
		} else {
			c.add(Info, "the FORWARD policy is DROP (set by another tool, Docker perhaps): minidocker-net's own chains accept its traffic; other bridges and VMs need their own rules", "")
		}
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			continue
		}
		l, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		a, _ := netip.AddrFromSlice(r.Dst.IP.To4())
		ones, _ := r.Dst.Mask.Size()
		p := netip.PrefixFrom(a, ones).Masked()
		for _, n := range s.Networks {
			// A macvlan or ipvlan network is on the LAN whose route this is.
			if _, bridged := driver.Of(n).Firewall(n); !bridged || n.NoIPv4 {
				continue
			}
			if n.Bridge != l.Attrs().Name && n.Subnet.Overlaps(p) {
				c.add(Fault, fmt.Sprintf("the route %s dev %s overlaps network %s (%s): some sandbox addresses are sent out of %s", p, l.Attrs().Name, n.Name, n.Subnet, l.Attrs().Name),
					"remove that route, or recreate the network with another --subnet")
			}
		}
	}
}

// notInPlace walks steps that can check themselves and names, by its
// first command, each whose object is not in place.
func notInPlace(ctx *plan.Context, steps []plan.Step) []string {
	var out []string
	for _, st := range steps {
		if c, ok := st.(plan.Checker); ok {
			if done, err := c.Satisfied(ctx); err != nil || !done {
				out = append(out, strings.SplitN(st.Commands()[0], "\n", 2)[0])
			}
		}
	}
	return out
}

// checkNetworks walks each network's own setup steps.
func checkNetworks(c *checker, ctx *plan.Context, s *store.State) {
	for _, name := range s.NetworkNames() {
		n := s.Networks[name]
		if missing := notInPlace(ctx, networkSteps(n)); len(missing) > 0 {
			c.add(Drift, fmt.Sprintf("network %s (bridge %s): not in place: %s", name, n.Bridge, strings.Join(missing, "; ")), "minidocker-net restore")
		} else {
			subnets, _ := model.Subnets(n)
			c.add(OK, fmt.Sprintf("network %s: bridge %s, %s", name, n.Bridge, strings.Join(subnets, ", ")), "")
		}
	}
}

// checkSandboxes walks each sandbox's own setup steps: namespace, /etc
// files, interfaces, default route.
func checkSandboxes(c *checker, ctx *plan.Context, t *tx, s *store.State) {
	for _, name := range s.SandboxNames() {
		sb := s.Sandboxes[name]
		if sb.Mode == store.ModeHost {
			continue
		}
		if !nsnet.Exists(name) {
			c.add(Drift, "sandbox "+name+": its namespace "+nsnet.Path(name)+" is missing", "minidocker-net restore (the sandbox comes back without processes)")
			continue
		}
		var probs []string
		for _, ep := range sb.Endpoints {
			if s.Networks[ep.Network] == nil {
				probs = append(probs, "its network "+ep.Network+" has no record")
			}
		}
		if len(probs) == 0 {
			steps, err := t.sandboxSteps(s, sb)
			if err != nil {
				c.add(Fault, "sandbox "+name+": "+err.Error(), "")
				continue
			}
			if missing := notInPlace(ctx, steps); len(missing) > 0 {
				probs = append(probs, "not in place: "+strings.Join(missing, "; "))
			}
		}
		if len(probs) > 0 {
			c.add(Drift, "sandbox "+name+": "+strings.Join(probs, "; "), "minidocker-net restore")
		} else {
			c.add(OK, "sandbox "+name, "")
		}
	}
}

func checkRules(c *checker, s *store.State, fw firewall.Backend, in firewall.Intent, family string) {
	findings, err := fw.Check(in)
	if err != nil {
		c.add(Fault, err.Error(), "")
		return
	}
	missing, extra := 0, 0
	for _, f := range findings {
		if f.Missing {
			if missing++; missing <= 5 {
				c.add(Drift, "rule missing"+family+": "+f.What+"   ("+f.Why+")", "minidocker-net restore")
			}
		} else if extra++; extra <= 5 {
			c.add(Drift, "rule not in the records"+family+": "+f.What, "minidocker-net doctor --fix rebuilds the chain")
		}
	}
	if missing > 5 {
		c.add(Drift, fmt.Sprintf("... and %d more rules missing", missing-5), "minidocker-net restore")
	}
	if extra > 5 {
		c.add(Drift, fmt.Sprintf("... and %d more rules not in the records", extra-5), "minidocker-net doctor --fix rebuilds the chain")
	}
	if len(findings) == 0 && len(in.Networks) > 0 {
		c.add(OK, "all rules in place"+family, "")
	}
}

// orphanEtc lists /etc/netns directories that minidocker-net wrote (its
// resolv.conf says so) for sandboxes that no longer exist: after a reboot
// they outlive the namespaces and the records.
func orphanEtc(s *store.State) []string {
	entries, _ := os.ReadDir("/etc/netns")
	var out []string
	for _, e := range entries {
		name := e.Name()
		if s.Sandboxes[name] != nil || nsnet.Exists(name) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(etcfiles.Dir(name), "resolv.conf"))
		if err == nil && strings.HasPrefix(string(b), etcfiles.ResolvHeader) {
			out = append(out, name)
		}
	}
	return out
}

// settledLinks lists the host's links once no released end of a removed
// sandbox is left, or after a second: the kernel deletes those with the
// namespace moments after rm (nsnet.Release), and they are no orphans until
// they outstay that.
func settledLinks(known map[string]bool) []netlink.Link {
	deadline := time.Now().Add(time.Second)
	for {
		all, _ := netlink.LinkList()
		pending := false
		for _, l := range all {
			if nsnet.Released(l) && !known[l.Attrs().Name] {
				pending = true
			}
		}
		if !pending || time.Now().After(deadline) {
			return all
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// orphans are what carries our marks but no record names.
func orphans(s *store.State) (links []netlink.Link, namespaces []string) {
	known := map[string]bool{}
	for _, n := range s.Networks {
		known[n.Bridge] = true
	}
	for _, sb := range s.Sandboxes {
		for _, ep := range sb.Endpoints {
			known[ep.HostVeth] = true
		}
	}
	all := settledLinks(known)
	for _, l := range all {
		a := l.Attrs()
		if strings.HasPrefix(a.Name, bridge.Prefix) && !known[a.Name] && (l.Type() == "bridge" || l.Type() == "veth") {
			links = append(links, l)
		}
	}
	for _, n := range s.Networks {
		if driver.IsGlobal(n) {
			known[driver.OverlayNetns(n)] = true // an overlay network's part here
		}
	}
	names, _ := nsnet.List()
	for _, n := range names {
		if s.Sandboxes[n] == nil && !known[n] && nsnet.IsOurs(n) {
			namespaces = append(namespaces, n)
		}
	}
	return links, namespaces
}

func checkOrphans(c *checker, s *store.State) {
	links, nss := orphans(s)
	for _, l := range links {
		c.add(Drift, fmt.Sprintf("%s %s is not in the records (left by a crash?)", l.Type(), l.Attrs().Name), "minidocker-net doctor --fix removes it")
	}
	for _, n := range nss {
		c.add(Drift, "namespace "+n+" is marked as minidocker-net's but no sandbox has that name", "minidocker-net doctor --fix removes it")
	}
	for _, n := range orphanEtc(s) {
		c.add(Drift, etcfiles.Dir(n)+" belongs to no sandbox (left by a reboot?)", "minidocker-net doctor --fix removes it")
	}
}

// DoctorFix rolls back an interrupted command, removes what no record
// names, and rebuilds what the records describe.
func (e *Engine) DoctorFix() error {
	return e.converge("doctor --fix", func(t *tx) error {
		links, nss := orphans(t.new)
		for _, n := range nss {
			if !t.e.opts.DryRun {
				if err := nsnet.Kill(n); err != nil {
					return err
				}
			}
			t.teardown = append(t.teardown, plan.Reverse{Inner: &nsnet.Netns{Name: n}}, plan.Reverse{Inner: &etcfiles.MakeDir{Sandbox: n}})
		}
		for _, n := range orphanEtc(t.new) {
			t.teardown = append(t.teardown, plan.Reverse{Inner: &etcfiles.MakeDir{Sandbox: n}})
		}
		for _, l := range links {
			if l.Type() == "veth" {
				t.teardown = append(t.teardown, plan.Reverse{Inner: &nsnet.Veth{Host: l.Attrs().Name}})
			}
		}
		for _, l := range links {
			if l.Type() == "bridge" {
				t.teardown = append(t.teardown, plan.Reverse{Inner: &bridge.Create{Name: l.Attrs().Name}})
			}
		}
		if err := t.restoreSteps(); err != nil {
			return err
		}
		return t.repairClaims()
	})
}

// checkResolver reports whether the embedded DNS serves the sandboxes
// that need it.
func checkResolver(c *checker, e *Engine, s *store.State) {
	served := 0
	for _, sb := range s.Sandboxes {
		if model.DNSServed(s, sb) {
			served++
		}
	}
	if served == 0 {
		return
	}
	if pid := e.ResolverPid(); pid != 0 {
		c.add(OK, fmt.Sprintf("the embedded DNS (pid %d) serves %d sandboxes at %s", pid, served, model.ResolverIP), "")
		return
	}
	c.add(Drift, fmt.Sprintf("the embedded DNS is not running: %d sandboxes get no answer at %s (see %s)", served, model.ResolverIP, e.opts.Paths.ResolverLog()),
		"minidocker-net doctor --fix (or the next command) starts it")
}
