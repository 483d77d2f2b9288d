package trace

import (
	"net/netip"

	"github.com/minidocker-net/minidocker-net/iptables"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nft"
	"github.com/minidocker-net/minidocker-net/store"
)

// KernelTrace is the kernel's own account of one probe: nf_tables'
// trace of its first packet through every chain it meets (ours,
// Docker's, iptables-nft's), beside the explanation.
type KernelTrace struct {
	t   *nft.Tracer
	fam nft.Family
	s   *store.State
}

// TraceKernel marks the probe rep describes, sent from sb (nil: the
// host) to, for the kernel's trace; Done reads it.
func TraceKernel(s *store.State, sb *store.Sandbox, rep *Report, to Target) (*KernelTrace, error) {
	fam := nft.IPv4
	if rep.IPv6 {
		fam = nft.IPv6
	}
	m := nft.TraceMatch{Family: fam, Proto: to.Proto, DPort: to.Port}
	if a, err := netip.ParseAddr(rep.ProbeAddr); err == nil {
		m.Dst = a
	}
	if sb != nil {
		for _, ep := range sb.Endpoints {
			switch {
			case rep.IPv6 && ep.IP6.IsValid():
				m.Src = append(m.Src, ep.IP6)
			case !rep.IPv6 && ep.IP.IsValid():
				m.Src = append(m.Src, ep.IP)
			}
		}
		if len(m.Src) == 0 {
			return nil, nil // nothing of it reaches the host's hooks
		}
	}
	t, err := nft.StartTrace(m)
	if err != nil {
		return nil, err
	}
	return &KernelTrace{t: t, fam: fam, s: s}, nil
}

// Done ends the trace: the lines of the account, and where nf_tables
// dropped the packet ("" when it did not).
func (k *KernelTrace) Done() ([]string, string, error) {
	events, err := k.t.Stop()
	intent := model.Intent(k.s)
	if k.fam == nft.IPv6 {
		intent = model.Intent6(k.s)
	}
	// iptables-nft's rules, by their place in iptables-save's chain.
	f := iptables.IPv4
	if k.fam == nft.IPv6 {
		f = iptables.IPv6
	}
	var rs *iptables.Ruleset
	other := func(table, chain string, i int) (string, bool) {
		if rs == nil {
			if rs, _ = iptables.Save(f); rs == nil {
				return "", false
			}
		}
		if lines := rs.RulesIn(table, chain); i < len(lines) {
			return f.Tool + " -t " + table + " " + lines[i], true
		}
		return "", false
	}
	lines, dropped := nft.Account(events, k.fam, nft.Layout(k.fam, intent), other)
	return lines, dropped, err
}
