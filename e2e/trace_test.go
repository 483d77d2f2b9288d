package e2e

import (
	"strings"
	"sync"
	"testing"
)

// TestTraceAgreesWithProbes runs trace --probe for every pair of the lesson
// topology, by name and by address, over ICMP, TCP and UDP: the explanation
// and a real packet must agree every time (exit status 2 means they do not).
func TestTraceAgreesWithProbes(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	lesson(t, h)
	h.MustMDN("run", "-d", "--name", "echo-server", "-p", "45678:7000", "-p", "45678:7001/udp")
	sandboxes := []string{"apple-server", "orange-server", "red-apple", "echo-server"}
	for _, sb := range sandboxes {
		h.Serve(sb, "tcp", 7000)
		h.Serve(sb, "udp", 7001)
	}
	froms := append([]string{"host"}, sandboxes...)
	var targets []string
	for _, to := range append([]string{"172.18.0.2", "172.18.0.3", "172.19.0.3", "172.17.0.2"}, sandboxes...) {
		targets = append(targets, to, to+":7000", to+":7001/udp")
	}
	targets = append(targets, "host", "host:45678", "host:45678/udp") // the published ports
	var (
		mu      sync.Mutex
		arrives = map[string]bool{}
		wg      sync.WaitGroup
	)
	for _, from := range froms {
		for _, to := range targets {
			wg.Add(1)
			go func(from, to string) {
				defer wg.Done()
				r := h.MDN("trace", "--probe", from, to)
				if r.Code != 0 && r.Code != 1 {
					t.Errorf("trace --probe %s %s: explanation and probe disagree, or trace failed:\n%s", from, to, r)
					return
				}
				mu.Lock()
				arrives[from+" -> "+to] = r.Code == 0
				mu.Unlock()
			}(from, to)
		}
	}
	wg.Wait()
	if len(arrives) != len(froms)*len(targets) {
		t.Errorf("%d verdicts for %d pairs", len(arrives), len(froms)*len(targets))
	}
	// The verdicts are the lesson's.
	for pair, want := range map[string]bool{
		"red-apple -> apple-server":          true,
		"red-apple -> orange-server":         false,
		"red-apple -> 172.18.0.3":            false,
		"red-apple -> 172.18.0.2:7000":       false,
		"apple-server -> orange-server:7000": true,
		"apple-server -> red-apple:7001/udp": true,
		"orange-server -> red-apple":         false,
		"red-apple -> host:45678":            true,
		"orange-server -> host:45678/udp":    true,
		"host -> echo-server:7000":           true,
		"echo-server -> apple-server":        false,
		"echo-server -> 172.19.0.3":          false,
		"echo-server -> host:45678":          true,
	} {
		if got, ok := arrives[pair]; !ok || got != want {
			t.Errorf("%s: arrives=%v (traced: %v), want %v", pair, got, ok, want)
		}
	}
	r := h.MDN("trace", "red-apple", "172.18.0.3")
	if r.Code != 1 || !strings.Contains(r.Stdout, "drops it") {
		t.Errorf("trace should say which rule drops red-apple's packet to orange-server:\n%s", r)
	}
}

// traceCase is one trace and what it must say: its exit status (0
// arrives, 1 does not; with --probe the real packet agreed) and a piece of
// its explanation.
type traceCase struct {
	args []string
	code int
	want string
}

// Traces runs each case; every explanation must also contain each of also.
func (h *Host) Traces(cases []traceCase, also ...string) {
	h.t.Helper()
	for _, c := range cases {
		r := h.MDN(append([]string{"trace"}, c.args...)...)
		ok := r.Code == c.code && strings.Contains(r.Stdout, c.want)
		for _, a := range also {
			ok = ok && strings.Contains(r.Stdout, a)
		}
		if !ok {
			h.t.Errorf("trace %v: exit %d (want %d), want %q %q in:\n%s%s", c.args, r.Code, c.code, c.want, also, r.Stdout, r.Stderr)
		}
	}
}

// TestTraceKernelAccount: with --probe, nf_tables' own trace of the
// probe (meta nftrace) is shown beside the explanation, and agrees with
// it: the rule that drops, or none; nothing is left behind.
func TestTraceKernelAccount(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	lesson(t, h)
	before := h.Snapshot()
	r := h.MDN("trace", "--probe", "red-apple", "172.18.0.3")
	drop := "kernel:  dropped by ip raw MINIDOCKER-PREROUTING: iptables -t raw -A MINIDOCKER-PREROUTING -d 172.18.0.0/16 ! -i mdn-test-n-"
	if nftables() {
		drop = `kernel:  dropped by ip minidocker-bridges raw-PREROUTING: iifname != "mdn-test-n-`
	}
	if r.Code != 1 || !strings.Contains(r.Stdout, "kernel:  nf_tables' own trace") || !strings.Contains(r.Stdout, drop) {
		t.Errorf("the kernel's account of a dropped probe:\n%s", r)
	}
	r = h.MDN("trace", "--probe", "red-apple", "apple-server")
	accept := "kernel:    ip filter MINIDOCKER-FORWARD: iptables -t filter -A MINIDOCKER-FORWARD -i mdn-applesonly -j ACCEPT -> accept"
	if nftables() {
		accept = `kernel:    ip minidocker-bridges filter-forward-in__mdn-applesonly: iifname "mdn-applesonly" accept comment "ICC" -> accept`
	}
	if r.Code != 0 || !strings.Contains(r.Stdout, accept) || !strings.Contains(r.Stdout, "kernel:  no rule dropped it") {
		t.Errorf("the kernel's account of a probe that arrives:\n%s", r)
	}
	h.SameAs(before, "after traces with probes")
}
