package model

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/minidocker-net/minidocker-net/store"
)

func TestNamesAnswerAsDockersEmbeddedDNS(t *testing.T) {
	s := state()
	// d is on m only; b is on both, with an alias it shares with c on n.
	s.Sandboxes["d"] = &store.Sandbox{Name: "d", ID: "dd" + strings.Repeat("0", 62), Hostname: "d", Mode: store.ModeBridge,
		Endpoints: []*store.Endpoint{{Network: "m", IfName: "eth0", IP: netip.MustParseAddr("172.19.0.2")}}}
	b := s.Sandboxes["b"]
	b.Endpoints = append(b.Endpoints, &store.Endpoint{Network: "m", IfName: "eth1", IP: netip.MustParseAddr("172.19.0.3")})
	b.Endpoints[0].Aliases = []string{"web"}
	s.Sandboxes["c"].Endpoints[0].Aliases = []string{"WEB"}
	names := NewNames(s)
	c, d := s.Sandboxes["c"], s.Sandboxes["d"]
	for _, tc := range []struct {
		asker *store.Sandbox
		q     string
		want  []string // nil: unknown
	}{
		{c, "B.", []string{"172.18.0.3"}},
		{c, "web", []string{"172.18.0.3", "172.18.0.4"}}, // a shared alias, case-blind
		{c, "d", nil},                               // not on a network c shares
		{d, "b", []string{"172.19.0.3"}},            // scoped to the shared network
		{d, "web", nil},                             // b's alias is on n only
		{c, "b.n.", []string{"172.18.0.3"}},         // name.network
		{c, "b.m", nil},                             // c is not on m
		{c, "bb1000000000", []string{"172.18.0.3"}}, // short ID
		{c, "b-host", []string{"172.18.0.3"}},       // hostname
	} {
		got, known := names.Lookup(s, tc.asker, tc.q)
		var strs []string
		for _, a := range got {
			strs = append(strs, a.String())
		}
		slices.Sort(strs)
		if known != (tc.want != nil) || !slices.Equal(strs, tc.want) {
			t.Errorf("%s asks %q: %v %v, want %v", tc.asker.Name, tc.q, strs, known, tc.want)
		}
	}
	if name, ok := names.Reverse(s, d, netip.MustParseAddr("172.19.0.3")); !ok || name != "b.m" {
		t.Errorf("PTR of b on m for d: %q %v", name, ok)
	}
	if _, ok := names.Reverse(s, d, netip.MustParseAddr("172.18.0.3")); ok {
		t.Error("d is answered a PTR on a network it is not on")
	}
	// The caller may shuffle what it got without reordering the index.
	got, _ := names.Lookup(s, c, "web")
	got[0], got[1] = got[1], got[0]
	if again, _ := names.Lookup(s, c, "web"); again[0] != netip.MustParseAddr("172.18.0.3") {
		t.Errorf("a shuffled answer reordered the index: %v", again)
	}
}

// BenchmarkLookup shows a query's cost does not grow with the sandboxes.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 250, 2500} {
		s := state()
		for i := range n {
			name := fmt.Sprintf("s%04d", i)
			s.Sandboxes[name] = &store.Sandbox{Name: name, ID: fmt.Sprintf("%064x", i+1000), Hostname: name, Mode: store.ModeBridge,
				Endpoints: []*store.Endpoint{{Network: "n", IfName: "eth0", IP: netip.AddrFrom4([4]byte{172, 18, byte(1 + i/250), byte(1 + i%250)})}}}
		}
		names := NewNames(s)
		asker := s.Sandboxes["b"]
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if _, known := names.Lookup(s, asker, "s0005."); !known {
					b.Fatal("unknown")
				}
			}
		})
	}
}
