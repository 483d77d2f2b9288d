package nft

import (
	"fmt"
	"io"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/plan"
)

// Backend is the nftables firewall backend: Docker 29's layout in a
// table of ours, every command's change one netlink batch.
type Backend struct {
	family Family
	kernel *Kernel // read once per command, for the views
	read   bool
	want   *Table // the intent's, laid out for the kernel read
}

var _ firewall.Backend = (*Backend)(nil)

// New returns the backend of one address family.
func New(f firewall.Family) *Backend {
	if f == firewall.IPv6 {
		return &Backend{family: IPv6}
	}
	return &Backend{family: IPv4}
}

func (b *Backend) Name() string { return "nftables" }

// Kernel reads our table, elements and all, once per command; want is
// what its rules are matched against.
func (b *Backend) Kernel(want *Table) (*Kernel, error) {
	if b.read {
		return b.kernel, nil
	}
	c, done, err := Conn("")
	if err != nil {
		return nil, err
	}
	defer done()
	k, err := Read(c, b.family, TableName, want, false)
	if err != nil {
		return nil, err
	}
	b.kernel, b.read = k, true
	return k, nil
}

// against is the intent's table and the kernel's, each made once per
// command (trace walks five hooks; a table of 10,000 ports costs 30 ms to
// lay out).
func (b *Backend) against(in firewall.Intent) (*Table, *Kernel, error) {
	if b.want == nil || !b.read {
		b.want = Layout(b.family, in)
	}
	k, err := b.Kernel(b.want)
	return b.want, k, err
}

// Setup has nothing to prepare: the table comes with the first
// network's change, and goes with the last one's.
func (b *Backend) Setup() ([]plan.Step, []string, string, error) { return nil, nil, "ACCEPT", nil }

func (b *Backend) Teardown([]string) []plan.Step { return nil }

// ForwardPolicy is our forward chain's policy: DROP while we hold
// forwarding on for the host, as Docker does with iptables.
func (b *Backend) ForwardPolicy() (string, error) {
	c, done, err := Conn("")
	if err != nil {
		return "", err
	}
	defer done()
	k, err := Read(c, b.family, TableName, nil, true)
	if err != nil {
		return "", err
	}
	if k != nil {
		if ch := k.chain(ChainForward); ch != nil && ch.Base != nil {
			return strings.ToUpper(ch.Base.policy()), nil
		}
	}
	return "ACCEPT", nil
}

// Change is the diff of the two intents' skeletons, and of the
// elements of the published ports that changed: what else both have in
// common is not looked at, so one more port costs the same at 10,000.
// When the last network goes, the table goes whole.
func (b *Backend) Change(from, to firewall.Intent) ([]plan.Step, error) {
	had, has := len(from.Networks) > 0, len(to.Networks) > 0
	var d *Diff
	if had && !has {
		d = Between(b.family, TableName, Layout(b.family, from), nil)
		if _, n, err := b.forwardDrops(); err != nil {
			return nil, err
		} else if n > 0 {
			d.Accepts = "del"
		}
	} else {
		a, z := Skeleton(b.family, from), Skeleton(b.family, to)
		if reflect.DeepEqual(from.Networks, to.Networks) && from.ForwardDrop == to.ForwardDrop {
			a, z = nil, nil // the same skeleton: only elements change
		}
		d = Between(b.family, TableName, a, z)
		before, after := firewall.ChangedPorts(from, to)
		d.portElems(before, after)
		if !had && has {
			drops, _, err := b.forwardDrops()
			if err != nil {
				return nil, err
			}
			if drops {
				d.Accepts = "add"
			}
		}
	}
	if d.Empty() {
		return nil, nil
	}
	return []plan.Step{&Step{Diff: *d}}, nil
}

func (b *Backend) forwardDrops() (bool, int, error) {
	c, done, err := Conn("")
	if err != nil {
		return false, 0, err
	}
	defer done()
	drops, ours, err := ForwardDrops(c, b.family)
	return drops, len(ours), err
}

// portElems adds the element changes of mappings before and after.
func (d *Diff) portElems(before, after []firewall.Port) {
	if len(before)+len(after) == 0 {
		return
	}
	elems := func(ps []firewall.Port) map[string][]Elem {
		out := map[string][]Elem{}
		seen := map[string]bool{}
		for _, p := range ps {
			for _, e := range PortElems(p) {
				if k := e.Set + " " + e.Key; !seen[k] {
					seen[k] = true
					out[e.Set] = append(out[e.Set], e.Elem)
				}
			}
		}
		return out
	}
	from, to := elems(before), elems(after)
	for _, s := range declarations(d.Family) {
		if len(from[s.Name])+len(to[s.Name]) > 0 {
			d.addElems(s, &Set{Elems: from[s.Name]}, &Set{Elems: to[s.Name]})
		}
	}
}

// Rebuild compares the kernel's table, elements and all, with the
// intent, and returns the batch that mends it, nil when nothing does.
func (b *Backend) Rebuild(want firewall.Intent) (plan.Step, error) {
	w, k, err := b.against(want)
	if err != nil {
		return nil, err
	}
	d := Repair(k, w)
	if len(want.Networks) > 0 {
		drops, n, err := b.forwardDrops()
		if err != nil {
			return nil, err
		}
		if drops && n == 0 {
			d.Accepts = "add"
		}
	}
	if d.Empty() {
		return nil, nil
	}
	return &Step{Diff: *d}, nil
}

// Remove deletes our table, whatever it holds, and our accepts in
// iptables' FORWARD.
func (b *Backend) Remove(string, []string, bool) ([]plan.Step, error) {
	b.read = false // reset trusts nothing read before
	k, err := b.Kernel(nil)
	if err != nil {
		return nil, err
	}
	_, n, err := b.forwardDrops()
	if err != nil {
		return nil, err
	}
	have, _ := k.asTable()
	d := Between(b.family, TableName, have, nil)
	if n > 0 {
		d.Accepts = "del"
	}
	if d.Empty() {
		return nil, nil
	}
	return []plan.Step{&Step{Diff: *d}}, nil
}

// Check compares the kernel with the intent.
func (b *Backend) Check(want firewall.Intent) ([]firewall.Finding, error) {
	w, k, err := b.against(want)
	if err != nil {
		return nil, err
	}
	var out []firewall.Finding
	for _, d := range Compare(k, w, true) {
		out = append(out, firewall.Finding{What: "nft " + d.What, Why: d.Why, Missing: d.Missing})
	}
	if len(want.Networks) > 0 {
		if drops, n, err := b.forwardDrops(); err == nil && drops && n == 0 {
			out = append(out, firewall.Finding{What: "nft " + acceptLines(b.family, true)[0] + " (and iifname)",
				Why: "iptables' FORWARD drops by policy: our bridges' traffic must get through it", Missing: true})
		}
	}
	return out, nil
}

// Tables are the parts of our table 'rules --table' shows: chains and
// sets by the hook they serve.
func (b *Backend) Tables() []string { return []string{"raw", "nat", "filter"} }

// part is which of Tables a chain or set belongs to.
func part(name string) string {
	switch {
	case strings.HasPrefix(name, "raw-") || name == SetLoopback:
		return "raw"
	case strings.HasPrefix(name, "nat-") || name == MapDNATAddr || name == MapDNATAny || name == SetHairpin:
		return "nat"
	}
	return "filter"
}

// List writes our table as nft lists it, each chain, rule, set and
// element with what it is for; what the intent calls for and the kernel
// lacks, and what the kernel has unasked, flagged.
func (b *Backend) List(w io.Writer, want firewall.Intent, tables []string) error {
	wt, k, err := b.against(want)
	if err != nil {
		return err
	}
	where := string(b.family) + " " + TableName
	if k == nil {
		fmt.Fprintf(w, "# (no table %s: minidocker-net has no rules here)\n", where)
		if wt != nil {
			fmt.Fprintf(w, "# MISSING table %s ('minidocker-net restore' puts it back)\n", where)
		}
		return nil
	}
	why := map[string]string{}
	if wt != nil {
		for _, s := range wt.Sets {
			why["set "+s.Name] = s.Why
			for _, e := range s.Elems {
				why[s.Name+" "+e.String()] = e.Why
			}
		}
	}
	const unknown = "not in minidocker-net's records: added by hand, or left over ('minidocker-net doctor')"
	note := func(key string) string {
		if n, ok := why[key]; ok {
			return n
		}
		return unknown
	}
	fmt.Fprintf(w, "table %s {\n", where)
	for _, n := range slices.Sorted(maps.Keys(k.Sets)) {
		s := k.Sets[n]
		if !slices.Contains(tables, part(n)) {
			continue
		}
		fmt.Fprintf(w, "\t%s %s {  # %s\n\t\ttype %s\n", s.keyword(), n, note("set "+n), s.Type())
		for _, e := range s.Elems {
			fmt.Fprintf(w, "\t\telement %s  # %s\n", e.String(), note(n+" "+e.String()))
		}
		if ws := wt.setOrNil(n); ws != nil {
			have := map[string]bool{}
			for _, e := range s.Elems {
				have[e.String()] = true
			}
			for _, e := range ws.Elems {
				if !have[e.String()] {
					fmt.Fprintf(w, "\t\t# MISSING element %s  # %s ('minidocker-net restore' puts it back)\n", e.String(), e.Why)
				}
			}
		}
		fmt.Fprintln(w, "\t}")
	}
	for _, kc := range k.Chains {
		if !slices.Contains(tables, part(kc.Name)) {
			continue
		}
		chainNote := "minidocker-net's chain"
		if wt.chainOrNil(kc.Name) == nil {
			chainNote = unknown
		}
		fmt.Fprintf(w, "\tchain %s {  # %s\n", kc.Name, chainNote)
		if kc.Base != nil {
			fmt.Fprintf(w, "\t\t%s\n", kc.Base.Line())
		}
		for _, r := range kc.Rules {
			if r.Rule == nil {
				fmt.Fprintf(w, "\t\t# rule handle %d  # %s\n", r.Handle, unknown)
				continue
			}
			fmt.Fprintf(w, "\t\t%s  # %s\n", r.Rule.Text(b.family), r.Rule.Why)
		}
		if c := wt.chainOrNil(kc.Name); c != nil {
			for _, d := range compareRules(where, c, kc, b.family) {
				if d.Missing && strings.HasPrefix(d.What, "rule ") {
					fmt.Fprintf(w, "\t\t# MISSING %s  # %s ('minidocker-net restore' puts it back)\n", strings.TrimPrefix(d.What, "rule "+where+" "+c.Name+" "), d.Why)
				}
			}
		}
		fmt.Fprintln(w, "\t}")
	}
	if wt != nil {
		for _, c := range wt.Chains {
			if k.chain(c.Name) == nil && slices.Contains(tables, part(c.Name)) {
				fmt.Fprintf(w, "\t# MISSING chain %s ('minidocker-net restore' puts it back)\n", c.Name)
			}
		}
	}
	fmt.Fprintln(w, "}")
	return nil
}

func (t *Table) setOrNil(name string) *Set {
	if t == nil {
		return nil
	}
	return t.set(name)
}

func (t *Table) chainOrNil(name string) *Chain {
	if t == nil {
		return nil
	}
	return t.chain(name)
}

func (b *Backend) DNATTarget(to string, dport int) (netip.Addr, int, error) {
	ap, err := netip.ParseAddrPort(to)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("DNAT target %q: %w", to, err)
	}
	return ap.Addr(), int(ap.Port()), nil
}

func (b *Backend) Prestart(*plan.Context, []plan.Step) {}
func (b *Backend) Keep(*plan.Context, bool)            {}

// Resolver is the embedded DNS's table inside a sandbox.
func (b *Backend) Resolver(netns string, ip netip.Addr, port int) plan.Step {
	return &DNS{Netns: netns, IP: ip.String(), Port: port}
}
