package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// scenario is a sequence of commands that covers every kind of plan: the
// first network (host settings), the default network, sandboxes with
// ports and aliases, connect, expose and their reverses, the last network.
var scenario = [][]string{
	{"network", "create", "n1"},
	{"network", "create", "--internal", "n2"},
	{"run", "-d", "--net", "n1", "--name", "a", "-p", "8080:80", "-p", "5353:53/udp"},
	{"run", "-d", "--name", "d"},
	{"run", "-d", "--net", "n1", "--name", "b", "--network-alias", "bee"},
	{"network", "connect", "n2", "a"},
	{"expose", "b", "9000", "127.0.0.1:9001:9001"},
	{"unexpose", "b", "9000"},
	{"network", "disconnect", "n2", "a"},
	{"rm", "-f", "a"},
	{"rm", "-f", "d"},
	{"network", "rm", "n2"},
	{"rm", "-f", "b"},
	{"network", "rm", "n1"},
}

var stepRE = regexp.MustCompile(`(?m)^# step (\d+)$`)

// steps counts the plan's steps with --dry-run.
func steps(h *Host, cmd []string) int {
	h.t.Helper()
	out := h.MustMDN(append([]string{"--dry-run"}, cmd...)...)
	n := 0
	for _, m := range stepRE.FindAllStringSubmatch(out, -1) {
		fmt.Sscan(m[1], &n)
	}
	if n == 0 {
		h.t.Fatalf("no steps in the plan of %v:\n%s", cmd, out)
	}
	return n
}

// everyStep runs check for each step of each command of the scenario, with
// the host as it was before the command, then runs the command for real.
func everyStep(t *testing.T, h *Host, check func(cmd []string, step, steps int, before Snapshot)) int {
	total := 0
	for _, cmd := range scenario {
		n := steps(h, cmd)
		before := h.Snapshot()
		for i := 1; i <= n; i++ {
			check(cmd, i, n, before)
			total++
		}
		h.MustMDN(cmd...)
	}
	return total
}

// TestFaultInjectionEveryStep makes each step of each command's plan fail
// in turn and checks that the host is exactly as before every time.
func TestFaultInjectionEveryStep(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	total := everyStep(t, h, func(cmd []string, i, n int, before Snapshot) {
		r := h.RunEnv("", []string{"MINIDOCKER_NET_FAIL_STEP=" + fmt.Sprint(i)}, append([]string{bin}, cmd...)...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "fault injected") || !strings.Contains(r.Stderr, "all changes rolled back") {
			t.Fatalf("%v with step %d failing:\n%s", cmd, i, r)
		}
		h.SameAs(before, "%v, step %d of %d failed", cmd, i, n)
	})
	t.Logf("%d injected faults over %d commands, each rolled back to the exact previous host", total, len(scenario))
}

// TestCrashAtEveryStep kills the process (SIGKILL) just before each step of
// each command; doctor must report the interrupted command, and doctor
// --fix must bring the host back exactly as it was.
func TestCrashAtEveryStep(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	total := everyStep(t, h, func(cmd []string, i, n int, before Snapshot) {
		r := h.RunEnv("", []string{"MINIDOCKER_NET_CRASH_STEP=" + fmt.Sprint(i)}, append([]string{bin}, cmd...)...)
		if r.Code != -1 && r.Code != 137 {
			t.Fatalf("%v should have been killed before step %d:\n%s", cmd, i, r)
		}
		doc := h.MDN("doctor")
		if doc.Code != 1 || !strings.Contains(doc.Stdout, "was interrupted half-way") {
			t.Fatalf("doctor after a crash before step %d of %v:\n%s", i, cmd, doc)
		}
		h.MustMDN("doctor", "--fix")
		h.SameAs(before, "%v, killed before step %d of %d, then doctor --fix", cmd, i, n)
	})
	t.Logf("%d crashes over %d commands, each rolled back to the exact previous host", total, len(scenario))
}
