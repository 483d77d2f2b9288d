package nft

import (
	"bytes"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/minidocker-net/minidocker-net/bridge"
)

// In nftables an accept ends one base chain only; a drop anywhere is
// final. So where iptables' FORWARD chain drops by policy (Docker sets it
// so), our accepted traffic would die there. Two rules at its head let
// our bridges' traffic through iptables, and our own table judges it:
// written as iptables-nft writes '-I FORWARD -i mdn+ -j ACCEPT', so
// iptables-save shows them and Docker's chains stay as they were.

// ipFilter is iptables-nft's filter table of a family.
func ipFilter(f Family) *nftables.Table { return &nftables.Table{Family: f.nft(), Name: "filter"} }

var forward = func(f Family) *nftables.Chain { return &nftables.Chain{Table: ipFilter(f), Name: "FORWARD"} }

// acceptExprs is '-i mdn+ -j ACCEPT' (or -o), as iptables-nft encodes it.
func acceptExprs(key expr.MetaKey) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(bridge.Prefix)},
		&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}}
}

// isAccept reports one of those two rules.
func isAccept(r *nftables.Rule) bool {
	if len(r.Exprs) != 4 {
		return false
	}
	m, ok1 := r.Exprs[0].(*expr.Meta)
	c, ok2 := r.Exprs[1].(*expr.Cmp)
	_, ok3 := r.Exprs[2].(*expr.Counter)
	v, ok4 := r.Exprs[3].(*expr.Verdict)
	return ok1 && ok2 && ok3 && ok4 && (m.Key == expr.MetaKeyIIFNAME || m.Key == expr.MetaKeyOIFNAME) &&
		c.Op == expr.CmpOpEq && bytes.Equal(c.Data, []byte(bridge.Prefix)) && v.Kind == expr.VerdictAccept
}

// ForwardDrops reports whether iptables' FORWARD chain of the family
// drops by policy, and which of our accepts it holds.
func ForwardDrops(c *nftables.Conn, f Family) (drops bool, ours []*nftables.Rule, err error) {
	ch, err := c.ListChain(ipFilter(f), "FORWARD")
	if err != nil || ch == nil {
		return false, nil, nil // no iptables filter table: nothing drops
	}
	rules, err := c.GetRules(ipFilter(f), ch)
	if err != nil {
		return false, nil, err
	}
	for _, r := range rules {
		if isAccept(r) {
			ours = append(ours, r)
		}
	}
	return ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop, ours, nil
}

// acceptLines are the accepts as nft script.
func acceptLines(f Family, add bool) []string {
	if !add {
		return []string{"# and the accepts for mdn* in " + string(f) + " filter FORWARD (iptables'): 'nft -a list chain " + string(f) +
			" filter FORWARD' shows their handles; nft delete rule " + string(f) + " filter FORWARD handle N"}
	}
	return []string{
		"insert rule " + string(f) + " filter FORWARD oifname \"" + bridge.Prefix + "*\" counter accept",
		"insert rule " + string(f) + " filter FORWARD iifname \"" + bridge.Prefix + "*\" counter accept",
	}
}

// queueAccepts adds (where the chain drops and they are not there) or
// deletes the accepts in the batch, as the kernel has them now.
func queueAccepts(c *nftables.Conn, f Family, add bool) error {
	drops, ours, err := ForwardDrops(c, f)
	if err != nil {
		return err
	}
	if add {
		if drops && len(ours) == 0 {
			for _, key := range []expr.MetaKey{expr.MetaKeyOIFNAME, expr.MetaKeyIIFNAME} {
				c.InsertRule(&nftables.Rule{Table: ipFilter(f), Chain: forward(f), Exprs: acceptExprs(key)})
			}
		}
		return nil
	}
	for _, r := range ours {
		if err := c.DelRule(r); err != nil {
			return err
		}
	}
	return nil
}
