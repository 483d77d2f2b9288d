package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/minidocker-net/minidocker-net/hostns"
)

// TestDoctorNeverCallsValidObjectsOrphans: with one record that cannot be
// read, doctor names it and calls nothing a leftover, and --fix removes
// nothing.
func TestDoctorNeverCallsValidObjectsOrphans(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "good")
	h.MustMDN("network", "create", "other")
	h.MustMDN("run", "-d", "--net", "good", "--name", "valid")
	h.MustMDN("run", "-d", "--net", "other", "--name", "broken")
	h.MustSh("echo '{not json' > " + hostns.StateDir + "/run/sandboxes/broken.json")
	before := h.Snapshot()
	r := h.MDN("doctor")
	if r.Code != 1 || !strings.Contains(r.Stdout, "broken.json is corrupt") {
		t.Errorf("doctor should report the corrupt record:\n%s", r)
	}
	for _, wrong := range []string{"not in the records", "no sandbox has that name", "--fix removes"} {
		if strings.Contains(r.Stdout, wrong) {
			t.Errorf("doctor proposes to remove what it cannot prove orphaned (%q):\n%s", wrong, r.Stdout)
		}
	}
	if !strings.Contains(r.Stdout, "network good: bridge mdn-good") {
		t.Errorf("the valid records should still be checked:\n%s", r.Stdout)
	}
	if fix := h.MDN("doctor", "--fix"); fix.Code == 0 {
		t.Errorf("doctor --fix should refuse over a corrupt record:\n%s", fix)
	}
	h.SameAs(before, "after doctor --fix over a corrupt record")
}

// TestFailedRmChangesNothing: an rm -f that cannot record its result (the
// state directory full) kills nothing and keeps the log.
func TestFailedRmChangesNothing(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "busy", "--", "sh", "-c", "echo kept in the log; exec sleep 301")
	h.MustSh("for i in $(seq 50); do grep -q kept " + hostns.StateDir + "/run/logs/busy.log && exit 0; sleep 0.05; done; exit 1")
	// /run is the throwaway host's tmpfs: shrink it to what it holds, and fill it.
	h.MustSh(`used=$(df --output=used -B1 /run | tail -1); mount -o remount,size=$((used + 65536)) /run; dd if=/dev/zero of=/run/fill bs=4k 2>/dev/null; true`)
	r := h.MDN("rm", "-f", "busy")
	h.MustSh("rm -f /run/fill")
	if r.Code == 0 {
		t.Fatalf("rm -f with the state directory full should fail:\n%s", r)
	}
	if !h.Running("sleep 301") {
		t.Errorf("a failed rm -f killed the sandbox's process")
	}
	if logs := h.MustMDN("logs", "busy"); !strings.Contains(logs, "kept in the log") {
		t.Errorf("a failed rm -f deleted the log: %q", logs)
	}
	if !strings.Contains(h.MustMDN("ps", "-q"), "busy") {
		t.Errorf("the sandbox should still be listed")
	}
	h.MustMDN("rm", "-f", "busy")
	if h.Running("sleep 301") {
		t.Errorf("rm -f left the process running")
	}
}

// TestRmRightBehindRun: rm -f queued behind run -d (waiting on the lock)
// never leaves the program running in an orphaned namespace.
func TestRmRightBehindRun(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "n")
	// rm starts 0 to 8 ms after run: on the old code one round in six left
	// an orphan.
	for i := 0; i < 30; i++ {
		h.Sh(fmt.Sprintf("%s run -d --net n --name x -- sleep 30%d >/dev/null 2>&1 & sleep 0.00%d; %s rm -f x >/dev/null 2>&1; wait", bin, i, i%9, bin))
		listed := strings.Contains(h.MustMDN("ps", "-q"), "x")
		running := h.Running(fmt.Sprintf("sleep 30%d", i))
		if running && !listed {
			t.Fatalf("round %d: rm -f succeeded but the program runs on in an orphaned namespace", i)
		}
		h.MustSh(bin + " rm -f x >/dev/null 2>&1; true")
		if h.Running(fmt.Sprintf("sleep 30%d", i)) {
			t.Fatalf("round %d: the program survived rm -f", i)
		}
	}
	h.MustMDN("network", "rm", "n")
	// The kernel deletes a removed sandbox's pairs with its namespace,
	// moments later (longer on a loaded machine): wait for it, within a
	// bound, as Snapshot does.
	deadline := time.Now().Add(3 * time.Second)
	for l := h.Must("ip", "-o", "link"); strings.Contains(l, "mdn"); l = h.Must("ip", "-o", "link") {
		if time.Now().After(deadline) {
			t.Errorf("interfaces left:\n%s", l)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResetOnlyOurs: on a host with nothing of ours, reset leaves the
// host's own (empty) filter table.
func TestResetOnlyOurs(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustSh("iptables -P FORWARD ACCEPT")
	before := h.Snapshot()
	if !strings.Contains(before["iptables"], "*filter") {
		t.Fatalf("setup: no filter table:\n%s", before["iptables"])
	}
	h.MustMDN("reset")
	h.SameAs(before, "after reset on a host with nothing of ours")
}

// TestIPAMSkipsTheHostsNameserver: a pool holding a nameserver of the
// host is skipped, as Docker does.
func TestIPAMSkipsTheHostsNameserver(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustSh("echo 'nameserver 172.18.0.53' > /etc/resolv.conf")
	h.MustMDN("network", "create", "n")
	if got := strings.TrimSpace(h.MustMDN("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "n")); got != "172.19.0.0/16" {
		t.Errorf("the first network took %s, want 172.19.0.0/16 (172.18.0.0/16 holds the host's nameserver)", got)
	}
}

// TestNamesDoNotShadowTheHost: sandboxes named localhost or
// host.docker.internal do not change what those names mean to others.
func TestNamesDoNotShadowTheHost(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "localhost")
	h.MustMDN("run", "-d", "--net", "n", "--name", "host.docker.internal")
	h.MustMDN("run", "-d", "--net", "n", "--name", "b", "--network-alias", "LocalHost")
	for _, sb := range []string{"b", "localhost"} {
		hosts := h.MustMDN("exec", sb, "--", "cat", "/etc/hosts")
		for _, l := range strings.Split(hosts, "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || f[0] == "127.0.0.1" || f[0] == "::1" {
				continue
			}
			for _, n := range f[1:] {
				if strings.EqualFold(n, "localhost") || (n == "host.docker.internal" && f[0] != "172.18.0.1") {
					t.Errorf("in %s, %s gets a second address: %q\n%s", sb, n, l, hosts)
				}
			}
		}
		if out := h.MustMDN("exec", sb, "--", "getent", "ahostsv4", "localhost"); strings.Contains(out, "172.18.") {
			t.Errorf("in %s localhost reaches a sandbox:\n%s", sb, out)
		}
	}
	if got := h.Resolves("b", "host.docker.internal"); got != "172.18.0.1" {
		t.Errorf("host.docker.internal is %s in b, want the gateway", got)
	}
}

// TestRmOnExitLifecycle: a --rm sandbox's supervisor removes only the
// sandbox it was started for, and a --rm sandbox whose client dies is
// still removed when its command ends.
func TestRmOnExitLifecycle(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("run", "-d", "--rm", "--name", "x", "--", "sleep", "302")
	// Hold the old supervisor while its sandbox is removed and the name
	// is taken again; then let it go on. Only once its command runs: a
	// child forked but not yet executed still has the supervisor's command
	// line, and pkill would stop it too (then never continue it).
	h.MustSh("for i in $(seq 200); do pgrep -xf 'sleep 302' >/dev/null && exit 0; sleep 0.05; done; exit 1")
	h.MustSh("pkill -STOP -f '[_]_rm-on-exit'")
	h.MustMDN("rm", "-f", "x")
	h.MustMDN("run", "-d", "--name", "x", "--", "sleep", "303")
	if r := h.Sh("pkill -CONT -f '[_]_rm-on-exit'; for i in $(seq 200); do pgrep -f '[_]_rm-on-exit' >/dev/null || exit 0; sleep 0.05; done; exit 1"); r.Code != 0 {
		// A flake seen under a full suite's load: say where it waits.
		t.Fatalf("the old --rm supervisor did not end within 10 s of SIGCONT:\n%s", h.Sh("ps -eo pid,ppid,stat,wchan:30,args; cat /proc/$(pgrep -f '[_]_rm-on-exit' | head -1)/stack 2>/dev/null"))
	}
	if !strings.Contains(h.MustMDN("ps", "-q"), "x") || !h.Running("sleep 303") {
		t.Errorf("the old --rm supervisor removed the new sandbox x")
	}
	// The client of run --rm killed: the sandbox goes when its command ends.
	h.MustSh(bin + " run --rm --name y -- sleep 1.5 </dev/null >/dev/null 2>&1 & c=$!; for i in $(seq 100); do ip netns list | grep -q '^y' && break; sleep 0.02; done; kill -9 $c")
	h.MustSh("for i in $(seq 100); do " + bin + " ps -q | grep -qx y || exit 0; sleep 0.05; done; exit 1")
	// And one that loses its terminal (SIGHUP).
	h.MustSh(bin + " run --rm --name z -- sh -c 'trap \"\" HUP; sleep 1.5' </dev/null >/dev/null 2>&1 & c=$!; for i in $(seq 100); do ip netns list | grep -q '^z' && break; sleep 0.02; done; kill -HUP $c")
	h.MustSh("for i in $(seq 100); do " + bin + " ps -q | grep -qx z || exit 0; sleep 0.05; done; exit 1")
}

// TestExecIntoHostModeSandbox: exec does not replace a host-mode
// sandbox's main process: it is still running, and rm -f ends it.
func TestExecIntoHostModeSandbox(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("run", "-d", "--net", "host", "--name", "hm", "--", "sleep", "304")
	h.MustMDN("exec", "hm", "--", "true")
	if st := strings.TrimSpace(h.MustMDN("inspect", "-f", "{{.State.Status}}", "hm")); st != "running" {
		t.Errorf("after exec the host-mode sandbox is %q, want running", st)
	}
	if ps := h.MustMDN("ps"); !strings.Contains(ps, "sleep") {
		t.Errorf("ps after exec:\n%s", ps)
	}
	h.MustMDN("rm", "-f", "hm")
	if h.Running("sleep 304") {
		t.Errorf("rm -f left the host-mode sandbox's main process running")
	}
}

// TestTraceTellsTheTruth: loopback inside a sandbox, and a network that
// does not masquerade, traced as a real packet finds them.
func TestTraceTellsTheTruth(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet(t, h)
	h.MustMDN("network", "create", "-o", "masquerade=false", "plain")
	h.MustMDN("run", "-d", "--net", "plain", "--name", "web")
	h.ServeOn("web", "tcp", "127.0.0.1", 7000)
	if r := h.MDN("trace", "--probe", "web", "127.0.0.1:7000"); r.Code != 0 {
		t.Errorf("trace to the sandbox's own loopback:\n%s", r)
	}
	r := h.MDN("trace", "--probe", "web", "198.51.100.1:80")
	if r.Code != 1 || !strings.Contains(r.Stdout, "does not masquerade") {
		t.Errorf("trace out of a network without masquerade must agree with the probe (no reply):\n%s", r)
	}
}

// TestRepairPlansOnlyWhatIsMissing: on an intact host restore and doctor
// --fix change nothing, and their dry runs say so.
func TestRepairPlansOnlyWhatIsMissing(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	lesson(t, h)
	for _, args := range [][]string{{"--dry-run", "restore"}, {"--dry-run", "doctor", "--fix"}} {
		out := h.MustMDN(args...)
		if strings.Contains(out, "ip link add") || strings.Contains(out, "ip netns add") || strings.Contains(out, "iptables") || strings.Contains(out, "nft -f") {
			t.Errorf("%v on an intact host plans changes:\n%s", args, out)
		}
	}
	before := h.Snapshot()
	h.MustMDN("restore")
	h.SameAs(before, "after restore on an intact host")
	// One thing missing: only that is planned.
	h.Must("ip", "-n", "red-apple", "addr", "flush", "dev", "eth0")
	out := h.MustMDN("--dry-run", "restore")
	if !strings.Contains(out, "ip -n red-apple addr add 172.19.0.3/16 dev eth0 brd +") || strings.Contains(out, "ip netns add") {
		t.Errorf("restore should plan the missing address only:\n%s", out)
	}
}

// TestDryRunPlansRebuildTheHost: the plans --dry-run prints, run by hand
// with sh in a fresh host, build what the tool builds.
func TestDryRunPlansRebuildTheHost(t *testing.T) {
	t.Parallel()
	tool, byHand := NewHost(t), NewHost(t)
	var script strings.Builder
	for i, cmd := range [][]string{
		{"network", "create", "n"},
		{"network", "create", "--subnet", "10.44.0.0/24", "-o", "icc=false", "m"},
		{"run", "-d", "--net", "n", "--name", "a", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp"},
		{"run", "-d", "--net", "n", "--name", "b", "--hostname", "bee.example.com"},
		{"network", "connect", "m", "a"},
		{"run", "-d", "--name", "d"},
		{"expose", "b", "9090:90"},
		{"network", "disconnect", "n", "b"},
		{"unexpose", "b", "9090:90"},
		{"rm", "-f", "a"},
		{"network", "rm", "m"},
		{"run", "-d", "--net", "n", "--name", "e", "--add-host", "gw:host-gateway"},
		{"rm", "d"},
		{"network", "create", "--ipv6", "v6"},
		{"run", "-d", "--net", "v6", "--name", "f", "-p", "7070:70"},
		{"network", "connect", "v6", "e"},
	} {
		// The same seed: the command hands out the IDs its plan showed.
		seed := []string{fmt.Sprintf("MINIDOCKER_NET_ID_SEED=replay-%d", i)}
		plan := tool.RunEnv("", seed, append([]string{bin, "--dry-run"}, cmd...)...)
		if real := tool.RunEnv("", seed, append([]string{bin}, cmd...)...); plan.Code != 0 || real.Code != 0 {
			t.Fatalf("%v:\n%s\n%s", cmd, plan, real)
		}
		script.WriteString(plan.Stdout)
	}
	r := byHand.RunIn(script.String(), "sh", "-e")
	if r.Code != 0 {
		t.Fatalf("the printed plans do not run:\n%s\nscript:\n%s", r, script.String())
	}
	want, got := tool.Snapshot(), byHand.Snapshot()
	for _, k := range []string{"links", "addresses", "routes", "iptables", "ip6tables", "nft", "sysctl", "netns", "netns b", "netns e", "netns f", "etc"} {
		if w, g := want[k], got[k]; w != g {
			t.Errorf("%s differs between the tool's host and the one built by hand:\ntool:\n%s\nby hand:\n%s", k, w, g)
		}
	}
	// And taken down by hand: the last network's plan deletes the tables
	// it created, reset's removes what is left.
	for i, cmd := range [][]string{{"rm", "-f", "b", "e", "f"}, {"network", "rm", "n", "v6"}, {"reset"}} {
		seed := []string{fmt.Sprintf("MINIDOCKER_NET_ID_SEED=down-%d", i)}
		plan := tool.RunEnv("", seed, append([]string{bin, "--dry-run"}, cmd...)...)
		if real := tool.RunEnv("", seed, append([]string{bin}, cmd...)...); plan.Code != 0 || real.Code != 0 {
			t.Fatalf("%v:\n%s\n%s", cmd, plan, real)
		}
		if r := byHand.RunIn(plan.Stdout, "sh", "-e"); r.Code != 0 {
			t.Fatalf("the printed plan of %v does not run:\n%s\nscript:\n%s", cmd, r, plan.Stdout)
		}
	}
	want, got = tool.Snapshot(), byHand.Snapshot()
	for _, k := range []string{"links", "addresses", "routes", "iptables", "ip6tables", "nft", "sysctl", "netns", "etc", "state"} {
		if w, g := want[k], got[k]; w != g {
			t.Errorf("after teardown %s differs:\ntool:\n%s\nby hand:\n%s", k, w, g)
		}
	}
}
