// Package e2e holds the end-to-end tests. Each test runs in its own
// throwaway host (new network, mount, PID and UTS namespaces with private
// /var/run/netns, /etc/netns, /run and state directory), so tests run in
// parallel and never touch the machine's interfaces or iptables. Packets
// only go to namespaces the test or the tool created.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minidocker-net/minidocker-net/hostns"
)

var (
	bin   string // the minidocker-net binary under test
	probe string // the probe program (e2e/probe)
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mdn-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, probe = filepath.Join(dir, "minidocker-net"), filepath.Join(dir, "probe")
	// The daemon beside the command, as minidocker-net looks for it.
	daemon := filepath.Join(dir, "minidocker-netd")
	for out, pkg := range map[string]string{bin: "../cmd/minidocker-net", daemon: "../cmd/minidocker-netd", probe: "./probe"} {
		build := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", out, pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Host is a throwaway host.
type Host struct {
	t    *testing.T
	init *exec.Cmd
	pid  int
}

// NewHost starts a throwaway host that lives until the test ends.
func NewHost(t *testing.T) *Host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end tests need root: they create namespaces, bridges and iptables rules (CI runs them as root)")
	}
	for _, tool := range []string{"nsenter", "iptables-save", "ip", "ping", "nc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("end-to-end tests need %s: run scripts/test.sh, which installs it", tool)
		}
	}
	cmd := hostns.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start throwaway host: %v", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		t.Fatalf("throwaway host did not start: %q %v", line, err)
	}
	h := &Host{t: t, init: cmd, pid: cmd.Process.Pid}
	t.Cleanup(func() {
		stdin.Close() // the host's first process exits, and every process of the host with it
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return h
}

// Result is what a command printed and how it exited.
type Result struct {
	Args   []string
	Stdout string
	Stderr string
	Code   int
}

func (r Result) String() string {
	return fmt.Sprintf("$ %s\n(exit %d)\nstdout: %s\nstderr: %s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Run runs a command inside the host, with a timeout.
func (h *Host) Run(args ...string) Result {
	return h.RunIn("", args...)
}

// RunIn runs a command with stdin text.
func (h *Host) RunIn(stdin string, args ...string) Result {
	h.t.Helper()
	return h.RunEnv(stdin, nil, args...)
}

// RunEnv runs a command with stdin text and extra environment.
func (h *Host) RunEnv(stdin string, env []string, args ...string) Result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"--target", fmt.Sprint(h.pid), "--net", "--mount", "--pid", "--uts", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.Env = append(append(os.Environ(), "MINIDOCKER_NET_STATE_DIR="+hostns.StateDir), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Args: args, Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("run %v: %v", args, err)
	}
	if ctx.Err() != nil {
		h.t.Fatalf("timeout: %s", r)
	}
	return r
}

// Sh runs a shell snippet inside the host.
func (h *Host) Sh(script string) Result {
	h.t.Helper()
	return h.Run("sh", "-c", script)
}

// MDN runs minidocker-net inside the host.
func (h *Host) MDN(args ...string) Result {
	h.t.Helper()
	return h.Run(append([]string{bin}, args...)...)
}

// Must runs a command and fails the test unless it exits 0.
func (h *Host) Must(args ...string) string {
	h.t.Helper()
	r := h.Run(args...)
	if r.Code != 0 {
		h.t.Fatalf("command failed:\n%s", r)
	}
	return r.Stdout
}

// MustMDN runs minidocker-net and fails the test unless it exits 0.
func (h *Host) MustMDN(args ...string) string {
	h.t.Helper()
	return h.Must(append([]string{bin}, args...)...)
}

// MustSh runs a shell snippet and fails the test unless it exits 0.
func (h *Host) MustSh(script string) string {
	h.t.Helper()
	return h.Must("sh", "-c", script)
}

// Fails runs minidocker-net, expects a non-zero exit and an error that
// contains want, and checks that the host did not change.
func (h *Host) Fails(want string, args ...string) {
	h.t.Helper()
	before := h.Snapshot()
	r := h.MDN(args...)
	if r.Code == 0 {
		h.t.Fatalf("expected failure, got success:\n%s", r)
	}
	if !strings.Contains(r.Stderr, want) {
		h.t.Fatalf("expected error containing %q:\n%s", want, r)
	}
	if n := strings.Count(strings.TrimSpace(r.Stderr), "\n"); n > 0 && !strings.Contains(want, "\n") {
		h.t.Errorf("error is not one line:\n%s", r.Stderr)
	}
	h.SameAs(before, "after failed command %v", args)
}

// Snapshot captures everything a command may change on the host.
type Snapshot map[string]string

// snapshotScript prints every section of a snapshot in one process. The
// state leaves out caches, the long-running process's log, and the
// engine ID, which is kept once made (the host's IPv6 ULA prefix is
// derived from it, as Docker's).
const snapshotScript = `
# Carrier (NO-CARRIER, LOWER_UP, state, linkdown) follows ports coming and
# going at the kernel's pace: operational state, not configuration.
# Interface indexes are the kernel's to choose: a link recreated by a
# rollback gets a new one.
carrier='s/NO-CARRIER,//; s/,LOWER_UP//; s/ state [A-Z]+//; s/ linkdown//'
index='s/^[0-9]+: //; s/@if[0-9]+//; s/ link-netnsid [0-9]+//'
echo '@@links'; ip -o link show | sed -E "$carrier; $index" | sort
echo '@@addresses'; ip -o addr show | grep -v 'inet6 fe80::' | sed -E "$index" | sort
echo '@@routes'; ip route show table all | grep -v -e 'fe80::' -e 'ff00::/8' -e 'multicast ff00' | sed -E "$carrier"
echo '@@iptables'; iptables-save | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[0:0]/'
echo '@@ip6tables'; ip6tables-save | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[0:0]/'
# nftables beside iptables-nft's own tables (the sections above show those).
echo '@@nft'; nft list tables | while read -r _ fam name; do
	case "$fam $name" in "ip filter"|"ip nat"|"ip raw"|"ip mangle"|"ip security"|"ip6 filter"|"ip6 nat"|"ip6 raw"|"ip6 mangle"|"ip6 security") continue;; esac
	nft list table "$fam" "$name"; done
echo '@@sysctl'; sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding; for f in /proc/sys/net/ipv4/conf/*/route_localnet /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo $f $(cat $f); done
echo '@@netns'; ls -1 /var/run/netns 2>/dev/null
for ns in $(ls /var/run/netns 2>/dev/null); do echo "@@netns $ns"; ip -n $ns -o addr | grep -v 'inet6 fe80::' | sed -E "$index" | sort; ip -n $ns route; done
echo '@@etc'; cd /etc/netns && for f in $(find . -type f | sort); do echo == $f; cat $f; done
echo '@@state'; cd ` + hostns.StateDir + ` 2>/dev/null && for f in $(find . -type f ! -name lock ! -name ruleset.save ! -name ruleset6.save ! -name boot_id ! -name engine-id ! -name resolver.log | sort); do echo == $f; cat $f; done
true`

// Snapshot returns the host's links, addresses, routes, namespaces (and
// what is inside them), owned sysctls, ruleset and state files.
func (h *Host) Snapshot() Snapshot {
	h.t.Helper()
	// A removed sandbox's host ends are deleted by the kernel with its
	// namespace, in the background (nsnet.Release): wait, within a bound,
	// for the host to settle. An end that outlives the bound stays in the
	// snapshot, and fails the comparison.
	deadline := time.Now().Add(3 * time.Second)
	for {
		s := h.snapshot()
		if !releasedEnd(s["links"]) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// releasedEnd reports a sandbox's host end off its bridge.
func releasedEnd(links string) bool {
	for _, l := range strings.Split(links, "\n") {
		if strings.Contains(l, "alias minidocker-net sandbox") && !strings.Contains(l, " master ") {
			return true
		}
	}
	return false
}

func (h *Host) snapshot() Snapshot {
	h.t.Helper()
	s := Snapshot{}
	key := ""
	for _, l := range strings.Split(h.MustSh(snapshotScript), "\n") {
		if k, ok := strings.CutPrefix(l, "@@"); ok {
			key = k
			s[key] = ""
			continue
		}
		s[key] += l + "\n"
	}
	s["nft"] = sortElements(s["nft"])
	return s
}

// sortElements puts the elements of each set nft lists in order: a hash
// set made again (a rollback) lists the same elements in another.
func sortElements(listing string) string {
	listing = counters.ReplaceAllString(listing, "counter")
	var out []string
	var elems []string
	in := false
	for _, l := range strings.Split(listing, "\n") {
		t := strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(t, "elements = { "); ok {
			in, t = true, rest
		} else if !in {
			out = append(out, l)
			continue
		}
		end := strings.HasSuffix(t, " }")
		for _, e := range strings.Split(strings.TrimSuffix(t, " }"), ",") {
			if e = strings.TrimSpace(e); e != "" {
				elems = append(elems, e)
			}
		}
		if end {
			sort.Strings(elems)
			out = append(out, "\t\telements = { "+strings.Join(elems, ", ")+" }")
			in, elems = false, nil
		}
	}
	return strings.Join(out, "\n")
}

// counters are what traffic changes in a listing.
var counters = regexp.MustCompile(`counter packets [0-9]+ bytes [0-9]+`)

// backend is the firewall backend under test: CI runs the suite once
// with each (MINIDOCKER_NET_FIREWALL_BACKEND, which every command of a
// throwaway host inherits).
var backend = os.Getenv("MINIDOCKER_NET_FIREWALL_BACKEND")

func nftables() bool { return backend == "nftables" }

// Ruleset is the host's firewall as the backend under test lists it.
func (h *Host) Ruleset() string {
	h.t.Helper()
	if nftables() {
		return sortElements(h.Must("nft", "list", "ruleset"))
	}
	return h.Must("iptables-save")
}

// SameAs fails the test if the host differs from a snapshot.
func (h *Host) SameAs(before Snapshot, format string, a ...any) {
	h.t.Helper()
	after := h.Snapshot()
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if before[k] != after[k] {
			h.t.Errorf("%s: %s changed\nbefore:\n%s\nafter:\n%s", fmt.Sprintf(format, a...), k, before[k], after[k])
		}
	}
}

// Running reports whether a process of the throwaway host matches
// pattern (pgrep -f).
func (h *Host) Running(pattern string) bool {
	h.t.Helper()
	return h.Run("pgrep", "-f", pattern).Code == 0
}

// Ping reports whether one ICMP echo from a sandbox (or the host, from "")
// to target is answered.
func (h *Host) Ping(from, target string) bool {
	h.t.Helper()
	args := []string{"ping", "-c1", "-W1", target}
	if from != "" {
		args = append([]string{bin, "exec", from, "--"}, args...)
	}
	return h.Run(args...).Code == 0
}

// Ping6 is Ping over IPv6 (ping -6: a name resolves to its AAAA).
func (h *Host) Ping6(from, target string) bool {
	h.t.Helper()
	args := []string{"ping", "-6", "-c1", "-W1", target}
	if from != "" {
		args = append([]string{bin, "exec", from, "--"}, args...)
	}
	return h.Run(args...).Code == 0
}

// in returns the command prefix that runs something in a place: "" is the
// host, "ns:NAME" a namespace the test made, anything else a sandbox.
func in(place string, args ...string) []string {
	switch {
	case place == "":
		return args
	case strings.HasPrefix(place, "ns:"):
		return append([]string{"ip", "netns", "exec", place[3:]}, args...)
	}
	return append([]string{bin, "exec", place, "--"}, args...)
}

// Serve starts a probe server in a place and waits until it listens.
func (h *Host) Serve(place, proto string, port int) { h.ServeOn(place, proto, "", port) }

// ServeOn starts a probe server bound to one address ("" for all).
func (h *Host) ServeOn(place, proto, addr string, port int) {
	h.t.Helper()
	flag := "-Hltn"
	if proto == "udp" {
		flag = "-Hlun"
	}
	start := fmt.Sprintf("setsid %s serve %s %s:%d >/dev/null 2>&1 < /dev/null &", probe, proto, addr, port)
	h.Must(in(place, "sh", "-c", start)...)
	wait := fmt.Sprintf("for i in $(seq 100); do ss %s | grep -q ':%d ' && exit 0; sleep 0.02; done; exit 1", flag, port)
	h.Must(in(place, "sh", "-c", wait)...)
}

// Reach sends a probe from a place and returns the server's reply ("TOKEN
// from SRC:PORT") and whether it arrived.
func (h *Host) Reach(from, proto, addr string) (string, bool) {
	h.t.Helper()
	r := h.Run(in(from, probe, "send", proto, addr, "hello")...)
	return strings.TrimSpace(r.Stdout), r.Code == 0
}

// Resolves returns the address a name resolves to in a place, or "".
func (h *Host) Resolves(from, name string) string {
	h.t.Helper()
	r := h.Run(in(from, "getent", "hosts", name)...)
	if f := strings.Fields(r.Stdout); r.Code == 0 && len(f) > 0 {
		return f[0]
	}
	return ""
}
