package nft

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Diff is a change to one table: chains rewritten whole (as Docker 29
// does, and ours are short), sets and elements added and deleted. Every
// part holds both sides, so the diff inverts into its own undo.
type Diff struct {
	Family   Family        `json:"family"`
	Table    string        `json:"table"`
	AddTable bool          `json:"add_table,omitempty"`
	DelTable bool          `json:"del_table,omitempty"` // the rest says what it held
	Sets     []SetChange   `json:"sets,omitempty"`
	Chains   []ChainChange `json:"chains,omitempty"`
	Elems    []ElemChange  `json:"elems,omitempty"`
	Netns    string        `json:"netns,omitempty"` // a sandbox's table
	// Accepts is "add" or "del": the accepts for our bridges at the head
	// of iptables' FORWARD chain, where it drops by policy (coexist.go).
	Accepts string `json:"accepts,omitempty"`
}

// SetChange adds (Old nil) or deletes (New nil) a set; only its
// declaration, elements are ElemChanges.
type SetChange struct {
	Old *Set `json:"old,omitempty"`
	New *Set `json:"new,omitempty"`
}

// ChainChange adds, rewrites or deletes a chain.
type ChainChange struct {
	Old *Chain `json:"old,omitempty"`
	New *Chain `json:"new,omitempty"`
}

// ElemChange adds and deletes elements of one set.
type ElemChange struct {
	Set *Set   `json:"set"` // its declaration
	Add []Elem `json:"add,omitempty"`
	Del []Elem `json:"del,omitempty"`
}

// Empty reports a diff that changes nothing.
func (d *Diff) Empty() bool {
	return !d.AddTable && !d.DelTable && len(d.Sets) == 0 && len(d.Chains) == 0 && len(d.Elems) == 0 && d.Accepts == ""
}

// Inverse is the diff that undoes d.
func (d *Diff) Inverse() *Diff {
	inv := &Diff{Family: d.Family, Table: d.Table, AddTable: d.DelTable, DelTable: d.AddTable, Netns: d.Netns,
		Accepts: map[string]string{"add": "del", "del": "add"}[d.Accepts]}
	for _, s := range d.Sets {
		inv.Sets = append(inv.Sets, SetChange{Old: s.New, New: s.Old})
	}
	for _, c := range d.Chains {
		inv.Chains = append(inv.Chains, ChainChange{Old: c.New, New: c.Old})
	}
	for _, e := range d.Elems {
		inv.Elems = append(inv.Elems, ElemChange{Set: e.Set, Add: e.Del, Del: e.Add})
	}
	return inv
}

func decl(s *Set) *Set { return &Set{Name: s.Name, Key: s.Key, Data: s.Data} }

// Between is the diff from table a to table b (either nil: no table).
// Elements are compared set by set; callers that know which elements
// changed leave them out of both and add ElemChanges themselves.
func Between(f Family, name string, a, b *Table) *Diff {
	d := &Diff{Family: f, Table: name}
	switch {
	case a == nil && b == nil:
		return d
	case a == nil:
		d.AddTable = true
		a = &Table{}
	case b == nil:
		d.DelTable = true
		b = &Table{}
	}
	for _, s := range b.Sets {
		old := a.set(s.Name)
		if old == nil {
			d.Sets = append(d.Sets, SetChange{New: decl(s)})
		}
		d.addElems(s, old, s)
	}
	for _, s := range a.Sets {
		if b.set(s.Name) == nil {
			d.addElems(s, s, nil)
			d.Sets = append(d.Sets, SetChange{Old: decl(s)})
		}
	}
	for _, c := range b.Chains {
		old := a.chain(c.Name)
		if old == nil || !old.sameAs(c, f) {
			d.Chains = append(d.Chains, ChainChange{Old: old, New: c})
		}
	}
	for _, c := range a.Chains {
		if b.chain(c.Name) == nil {
			d.Chains = append(d.Chains, ChainChange{Old: c})
		}
	}
	return d
}

// addElems notes the element difference of a set between two tables.
func (d *Diff) addElems(s, from, to *Set) {
	have, want := map[string]bool{}, map[string]bool{}
	if from != nil {
		for _, e := range from.Elems {
			have[e.String()] = true
		}
	}
	if to != nil {
		for _, e := range to.Elems {
			want[e.String()] = true
		}
	}
	ch := ElemChange{Set: decl(s)}
	if to != nil {
		for _, e := range to.Elems {
			if !have[e.String()] {
				ch.Add = append(ch.Add, e)
			}
		}
	}
	if from != nil {
		for _, e := range from.Elems {
			if !want[e.String()] {
				ch.Del = append(ch.Del, e)
			}
		}
	}
	if len(ch.Add)+len(ch.Del) > 0 {
		d.Elems = append(d.Elems, ch)
	}
}

// Script renders the diff as the nft script that makes the same change,
// in the order Apply sends it.
func (d *Diff) Script() []string {
	where := string(d.Family) + " " + d.Table
	var out []string
	if d.Accepts != "" {
		out = acceptLines(d.Family, d.Accepts == "add")
	}
	if d.DelTable {
		return append(out, "delete table "+where)
	}
	if d.AddTable {
		out = append(out, "add table "+where)
	}
	for _, s := range d.Sets {
		if s.New != nil {
			out = append(out, "add "+s.New.keyword()+" "+where+" "+s.New.Name+" "+s.New.Decl())
		}
	}
	for _, c := range d.Chains {
		if c.New != nil && c.Old == nil {
			out = append(out, "add chain "+where+" "+c.New.Name+chainDecl(c.New))
		}
	}
	for _, c := range d.Chains {
		if c.New == nil {
			continue
		}
		rules := c.New.Rules
		if c.Old != nil {
			if c.New.Base != nil && c.Old.Base != nil && c.New.Base.Decl() != c.Old.Base.Decl() {
				out = append(out, "add chain "+where+" "+c.New.Name+chainDecl(c.New))
			}
			if extra, ok := appended(c, d.Family); ok {
				rules = extra
			} else {
				out = append(out, "flush chain "+where+" "+c.New.Name)
			}
		}
		for _, r := range rules {
			out = append(out, "add rule "+where+" "+c.New.Name+" "+r.Text(d.Family))
		}
	}
	for _, e := range d.Elems {
		if len(e.Del) > 0 {
			out = append(out, "delete element "+where+" "+e.Set.Name+" { "+elemList(e.Del)+" }")
		}
	}
	for _, e := range d.Elems {
		if len(e.Add) > 0 {
			out = append(out, "add element "+where+" "+e.Set.Name+" { "+elemList(e.Add)+" }")
		}
	}
	for _, c := range d.Chains {
		if c.New == nil {
			out = append(out, "delete chain "+where+" "+c.Old.Name)
		}
	}
	for _, s := range d.Sets {
		if s.New == nil {
			out = append(out, "delete "+s.Old.keyword()+" "+where+" "+s.Old.Name)
		}
	}
	return out
}

// appended returns the rules a change adds after the old ones, when that
// is all it does.
func appended(c ChainChange, f Family) ([]Rule, bool) {
	if c.Old == nil || c.New == nil || len(c.New.Rules) <= len(c.Old.Rules) {
		return nil, false
	}
	for i, r := range c.Old.Rules {
		if r.Text(f) != c.New.Rules[i].Text(f) {
			return nil, false
		}
	}
	return c.New.Rules[len(c.Old.Rules):], true
}

// holds reports whether the kernel's chain ends where ch does: as many
// rules, the last the same. (A change undone that never ran finds the
// longer chain still there.) Comparing every rule cost a millisecond per
// ten networks on each network create.
func holds(c *nftables.Conn, t *nftables.Table, ch *Chain, f Family) bool {
	rules, err := c.GetRules(t, &nftables.Chain{Table: t, Name: ch.Name})
	if err != nil || len(rules) != len(ch.Rules) {
		return false
	}
	if len(rules) == 0 {
		return true
	}
	last := rules[len(rules)-1]
	key, err := ruleKey(f, &ch.Rules[len(ch.Rules)-1])
	return err == nil && key == exprKey(f, last.Exprs, last.UserData)
}

func chainDecl(c *Chain) string {
	if c.Base == nil {
		return ""
	}
	return " " + c.Base.Decl()
}

func elemList(es []Elem) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.String()
	}
	return strings.Join(parts, ", ")
}

func (b *Base) chain(t *nftables.Table, name string) *nftables.Chain {
	c := &nftables.Chain{Table: t, Name: name}
	if b == nil {
		return c
	}
	prio := nftables.ChainPriority(b.Priority)
	policy := nftables.ChainPolicyAccept
	if b.policy() == "drop" {
		policy = nftables.ChainPolicyDrop
	}
	c.Type, c.Hooknum, c.Priority, c.Policy = nftables.ChainType(b.Type), hookNums[b.Hook], &prio, &policy
	return c
}

// queue buffers the diff on a connection, for one Flush: one netlink
// batch, one transaction.
func (d *Diff) queue(c *nftables.Conn) error {
	t := &nftables.Table{Family: d.Family.nft(), Name: d.Table}
	if d.Accepts != "" {
		if err := queueAccepts(c, d.Family, d.Accepts == "add"); err != nil {
			return err
		}
	}
	if d.DelTable {
		c.DelTable(t)
		return nil
	}
	if d.AddTable {
		c.AddTable(t)
	}
	sets := map[string]*nftables.Set{}
	set := func(s *Set) (*nftables.Set, error) {
		if ns, ok := sets[s.Name]; ok {
			return ns, nil
		}
		ns, err := nftSet(t, s)
		sets[s.Name] = ns
		return ns, err
	}
	for _, s := range d.Sets {
		if s.New == nil {
			continue
		}
		ns, err := set(s.New)
		if err != nil {
			return err
		}
		if err := c.AddSet(ns, nil); err != nil {
			return fmt.Errorf("add set %s: %w", s.New.Name, err)
		}
	}
	for _, ch := range d.Chains {
		if ch.New != nil {
			// Every chain first, empty: rules and elements may jump to any.
			c.AddChain(ch.New.Base.chain(t, ch.New.Name))
		}
	}
	for _, ch := range d.Chains {
		if ch.New == nil {
			continue
		}
		// Flushed and written whole, even when new: undoing a deletion
		// that never ran finds the chain there, rules and all. Rules only
		// appended are appended.
		nc := &nftables.Chain{Table: t, Name: ch.New.Name}
		rules := ch.New.Rules
		if extra, ok := appended(ch, d.Family); ok && holds(c, t, ch.Old, d.Family) {
			rules = extra
		} else {
			c.FlushChain(nc)
		}
		for _, r := range rules {
			es, err := r.Exprs(d.Family)
			if err != nil {
				return fmt.Errorf("chain %s: %s: %w", ch.New.Name, r.Text(d.Family), err)
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: nc, Exprs: es, UserData: commentData(r.Comment)})
		}
	}
	for _, pass := range []bool{false, true} {
		for _, e := range d.Elems {
			es := e.Del
			if pass {
				es = e.Add
			}
			if len(es) == 0 {
				continue
			}
			ns, err := set(e.Set)
			if err != nil {
				return err
			}
			els := make([]nftables.SetElement, len(es))
			for i, el := range es {
				if els[i], err = nftElem(e.Set, el); err != nil {
					return fmt.Errorf("set %s: %w", e.Set.Name, err)
				}
			}
			// A message's element list is one netlink attribute, whose
			// length is 16 bits: a few hundred elements per message, all
			// in the one batch.
			for len(els) > 0 {
				n := min(len(els), 256)
				if pass {
					err = c.SetAddElements(ns, els[:n])
				} else {
					err = c.SetDeleteElements(ns, els[:n])
				}
				if err != nil {
					return fmt.Errorf("set %s: %w", e.Set.Name, err)
				}
				els = els[n:]
			}
		}
	}
	for _, ch := range d.Chains {
		if ch.New == nil {
			nc := &nftables.Chain{Table: t, Name: ch.Old.Name}
			c.FlushChain(nc)
			c.DelChain(nc)
		}
	}
	for _, s := range d.Sets {
		if s.New == nil {
			ns, err := set(s.Old)
			if err != nil {
				return err
			}
			c.DelSet(ns)
		}
	}
	return nil
}

// Apply sends the diff as one batch. The kernel takes all of it or none:
// when a deletion finds its object gone (a flush by hand, a half-done
// repair), what is still there is read and the batch sent again without
// what is not.
func (d *Diff) Apply() error {
	c, done, err := Conn(d.Netns)
	if err != nil {
		return err
	}
	defer done()
	err = d.send(c)
	if !errors.Is(err, unix.ENOENT) {
		return err
	}
	k, rerr := Read(c, d.Family, d.Table, nil, false)
	if rerr != nil {
		return errors.Join(err, rerr)
	}
	return d.present(k).send(c)
}

func (d *Diff) send(c *nftables.Conn) error {
	if err := d.queue(c); err != nil {
		return err
	}
	if d.Netns == "" {
		host.Lock()
		host.wrote = true
		nl := host.nl
		host.Unlock()
		// Whatever happens, the kernel's answer is not waited for
		// forever.
		if nl != nil {
			_ = nl.SetReadDeadline(time.Now().Add(flushTimeout))
			defer nl.SetReadDeadline(time.Time{})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft -f (%s %s): %w", d.Family, d.Table, err)
	}
	return nil
}

// flushTimeout bounds the wait for the kernel's answer to a batch (10,000
// ports take 0.1 s).
const flushTimeout = 30 * time.Second

// present is the diff without the deletions of what k does not hold.
func (d *Diff) present(k *Kernel) *Diff {
	out := *d
	if k == nil {
		out.DelTable = false
		out.Sets, out.Chains, out.Elems = nil, nil, nil
		if !d.AddTable {
			return &out
		}
		out.AddTable = true
		k = &Kernel{Sets: map[string]*Set{}}
	}
	out.Sets = nil
	for _, s := range d.Sets {
		if s.New != nil || k.Sets[s.Old.Name] != nil {
			out.Sets = append(out.Sets, s)
		}
	}
	out.Chains = nil
	for _, c := range d.Chains {
		if c.New != nil || k.chain(c.Old.Name) != nil {
			out.Chains = append(out.Chains, c)
		}
	}
	out.Elems = nil
	for _, e := range d.Elems {
		have := map[string]bool{}
		if s := k.Sets[e.Set.Name]; s != nil {
			for _, el := range s.Elems {
				have[el.String()] = true
			}
		}
		ch := ElemChange{Set: e.Set, Add: e.Add}
		for _, el := range e.Del {
			if have[el.String()] {
				ch.Del = append(ch.Del, el)
			}
		}
		out.Elems = append(out.Elems, ch)
	}
	return &out
}
