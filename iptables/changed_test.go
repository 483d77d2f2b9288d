package iptables

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/store"
)

// randomState builds a state of up to three networks and four sandboxes
// with a few published ports each (some to the same container port, which
// share rules), from a fixed vocabulary so that two random states share
// most objects.
func randomState(r *rand.Rand) *store.State {
	s := store.NewState()
	for i := range 3 {
		if r.IntN(4) == 0 {
			continue
		}
		name := fmt.Sprintf("n%d", i)
		s.Networks[name] = &store.Network{
			Name: name, Bridge: "mdn-" + name,
			Subnet:   netip.MustParsePrefix(fmt.Sprintf("172.30.%d.0/24", i)),
			Gateway:  netip.MustParseAddr(fmt.Sprintf("172.30.%d.1", i)),
			Internal: r.IntN(5) == 0, ICC: r.IntN(5) != 0, Masquerade: r.IntN(5) != 0,
		}
	}
	nets := s.NetworkNames()
	for i := range 4 {
		if len(nets) == 0 || r.IntN(4) == 0 {
			continue
		}
		sb := &store.Sandbox{Name: fmt.Sprintf("s%d", i), Mode: store.ModeBridge}
		net := nets[r.IntN(len(nets))]
		n := s.Networks[net]
		sb.Endpoints = []*store.Endpoint{{Network: net, IP: n.Subnet.Addr().Next().Next().Next().Next()}}
		for range i {
			sb.Endpoints[0].IP = sb.Endpoints[0].IP.Next()
		}
		for j := range r.IntN(4) {
			hp := 8000 + 10*i + j + r.IntN(2)
			sb.Ports = append(sb.Ports, store.Port{HostPort: hp, HostPortEnd: hp, Port: 80 + j%2, PortEnd: 80 + j%2, Proto: []string{"tcp", "udp"}[r.IntN(2)]})
		}
		s.Sandboxes[sb.Name] = sb
	}
	return s
}

func keys(rs []Rule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Key())
	}
	slices.Sort(out)
	return out
}

// The shortcut must plan exactly what diffing every rule of both states
// plans.
func TestChangedRulesMatchFullDiff(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		old, cur := randomState(r), randomState(r)
		if i%3 == 0 { // mostly the same state, as a real command sees it
			cur = randomState(rand.New(rand.NewPCG(uint64(i), 0)))
			old = randomState(rand.New(rand.NewPCG(uint64(i), 0)))
			for _, sb := range cur.Sandboxes {
				if len(sb.Ports) > 0 {
					sb.Ports = sb.Ports[1:]
					break
				}
			}
		}
		want := Diff(Rules(model.Intent(old)), Rules(model.Intent(cur)))
		got := Diff(changedRules(model.Intent(old), model.Intent(cur)))
		if !slices.Equal(keys(got.Add), keys(want.Add)) || !slices.Equal(keys(got.Del), keys(want.Del)) {
			t.Fatalf("case %d: changedRules adds %v deletes %v; full diff adds %v deletes %v",
				i, keys(got.Add), keys(got.Del), keys(want.Add), keys(want.Del))
		}
	}
}
