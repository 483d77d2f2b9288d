package e2e

import (
	"strings"
	"testing"
)

func TestViews(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	lesson(t, h)
	h.MustMDN("run", "-d", "--net", "test-network", "--name", "web", "-p", "8080:80")

	rules := h.MustMDN("rules", "--table", "nat")
	wants := []string{"*nat", "-A MINIDOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.4:80", "# sandbox web: 80/tcp -> 0.0.0.0:8080"}
	// By hand: a rule added in our chains, and the published port's DNAT deleted.
	drift := []string{"iptables -t nat -A MINIDOCKER -p udp --dport 9 -j RETURN",
		"iptables -t nat -D MINIDOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.4:80"}
	missing := "# MISSING -A MINIDOCKER -p tcp -m tcp --dport 8080"
	if nftables() {
		wants = []string{"table ip minidocker-bridges {", "map dnat-ports-any {", "element tcp . 8080 : 172.18.0.4 . 80  # sandbox web: 80/tcp -> 0.0.0.0:8080",
			`chain nat-postrouting-in__mdn-test-n-`, "dnat ip to meta l4proto . th dport map @dnat-ports-any"}
		drift = []string{"nft add rule ip minidocker-bridges nat-prerouting-and-output udp dport 9 return",
			"nft delete element ip minidocker-bridges dnat-ports-any '{ tcp . 8080 }'"}
		missing = "# MISSING element tcp . 8080 : 172.18.0.4 . 80"
	}
	for _, want := range wants {
		if !strings.Contains(rules, want) {
			t.Errorf("rules --table nat lacks %q:\n%s", want, rules)
		}
	}
	for _, d := range drift {
		h.MustSh(d)
	}
	rules = h.MustMDN("rules", "--table", "nat")
	if !strings.Contains(rules, "not in minidocker-net's records") || !strings.Contains(rules, missing) {
		t.Errorf("rules should flag drift:\n%s", rules)
	}
	h.MustMDN("doctor", "--fix")
	if h.MDN("rules", "--table", "bogus").Code == 0 {
		t.Errorf("an unknown table is an error")
	}

	bridges := h.MustMDN("bridges")
	for _, want := range []string{"bridge name", "sandbox apple-server, eth0 172.18.0.2/16", "sandbox apple-server, eth1 172.19.0.2/16",
		"network applesonly: 172.19.0.0/16, gateway 172.19.0.1 on the bridge"} {
		if !strings.Contains(bridges, want) {
			t.Errorf("bridges lacks %q:\n%s", want, bridges)
		}
	}

	dot := h.MustMDN("graph")
	for _, want := range []string{"digraph minidocker_net", "red-apple", "eth1 172.19.0.2", "published ports", "0.0.0.0:8080 → 80/tcp"} {
		if !strings.Contains(dot, want) {
			t.Errorf("graph lacks %q:\n%s", want, dot)
		}
	}
	if m := h.MustMDN("graph", "--format", "mermaid"); !strings.HasPrefix(m, "flowchart LR") || !strings.Contains(m, "orange-server") {
		t.Errorf("mermaid:\n%s", m)
	}
	if h.Run("sh", "-c", "command -v dot").Code == 0 {
		if svg := h.MustMDN("graph", "--format", "svg"); !strings.Contains(svg, "<svg") || !strings.Contains(svg, "eth1 172.19.0.2") {
			t.Errorf("svg: %.200s", svg)
		}
	}
	// Without Graphviz: a clear message, not a failure of something else.
	r := h.Run("env", "PATH=/nonexistent", bin, "graph", "--format", "svg")
	if r.Code == 0 || !strings.Contains(r.Stderr, "needs Graphviz's dot: apt-get install graphviz") {
		t.Errorf("svg without dot:\n%s", r)
	}
}

func TestDemoStepsAndInteractiveRun(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	// --step waits for Enter between lessons.
	r := h.RunIn(strings.Repeat("\n", 5), bin, "demo", "--on-host", "--step")
	if r.Code != 0 || strings.Count(r.Stdout, "[press Enter for the next lesson]") != 4 {
		t.Errorf("demo --step:\n%s", r)
	}
	// run without a command: the user's shell, on stdin, with its exit status.
	r = h.RunIn("hostname; ip -o -4 addr show eth0; exit 3\n", "env", "SHELL=/bin/sh",
		bin, "run", "--rm", "-i", "--name", "shell", "--hostname", "inside")
	if r.Code != 3 || !strings.Contains(r.Stdout, "inside") || !strings.Contains(r.Stdout, "172.17.0.2/16") {
		t.Errorf("interactive run:\n%s", r)
	}
	if strings.Contains(h.MustMDN("ps", "-q"), "shell") {
		t.Errorf("--rm left the sandbox")
	}
}
