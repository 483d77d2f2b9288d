package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
)

// dig asks the sandbox's resolver (resolv.conf: 127.0.0.11) and returns
// the short answer.
func dig(h *Host, from string, args ...string) string {
	h.t.Helper()
	r := h.Run(append([]string{bin, "exec", from, "--", "dig", "+short", "+tries=1", "+time=2"}, args...)...)
	if r.Code != 0 {
		return "" // no server reached
	}
	return strings.TrimSpace(r.Stdout)
}

// status is the rcode dig reports.
func status(h *Host, from string, args ...string) string {
	h.t.Helper()
	out := h.Run(append([]string{bin, "exec", from, "--", "dig", "+tries=1", "+time=5"}, args...)...).Stdout
	if i := strings.Index(out, "status: "); i >= 0 {
		return strings.TrimRight(strings.Fields(out[i+8:])[0], ",")
	}
	return "no answer"
}

// TestEmbeddedDNS: the lesson's names answered by 127.0.0.11 as Docker's
// embedded DNS answers them, wired as Docker wires it.
func TestEmbeddedDNS(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	lesson(t, h)
	// Docker's resolv.conf and in-namespace rules.
	resolv := h.MustMDN("exec", "red-apple", "--", "cat", "/etc/resolv.conf")
	hasLines(t, resolv, "nameserver 127.0.0.11", "options ndots:0")
	nat := dnsRules(h, "red-apple")
	if nftables() {
		// Docker 29's docker-dns table, with our name.
		hasLines(t, nat, "table ip minidocker-dns {", "chain dns-dnat {", "chain dns-snat {", "type nat hook output priority -100; policy accept;")
		if !strings.Contains(nat, "ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:") || !strings.Contains(nat, "snat to 127.0.0.11:53") {
			t.Errorf("the DNAT/SNAT pair:\n%s", nat)
		}
	} else {
		hasLines(t, nat, "-N MINIDOCKER_OUTPUT", "-N MINIDOCKER_POSTROUTING", "-A OUTPUT -d 127.0.0.11/32 -j MINIDOCKER_OUTPUT", "-A POSTROUTING -d 127.0.0.11/32 -j MINIDOCKER_POSTROUTING")
		if !strings.Contains(nat, "--dport 53 -j DNAT --to-destination 127.0.0.11:") || !strings.Contains(nat, "-j SNAT --to-source :53") {
			t.Errorf("the DNAT/SNAT pair:\n%s", nat)
		}
	}
	// The name matrix, by dig, nslookup and getent.
	for _, c := range []struct{ from, name, want string }{
		{"red-apple", "apple-server", "172.19.0.2"},
		{"red-apple", "orange-server", ""},
		{"orange-server", "apple-server", "172.18.0.2"},
		{"apple-server", "red-apple", "172.19.0.3"},
		{"apple-server", "orange-server.test-network", "172.18.0.3"},
		{"apple-server", "ORANGE-SERVER", "172.18.0.3"},
	} {
		if got := dig(h, c.from, c.name); got != c.want {
			t.Errorf("dig in %s %s: %q, want %q", c.from, c.name, got, c.want)
		}
		if got := h.Resolves(c.from, c.name); got != c.want {
			t.Errorf("getent in %s %s: %q, want %q", c.from, c.name, got, c.want)
		}
	}
	if out := h.MustMDN("exec", "red-apple", "--", "nslookup", "apple-server"); !strings.Contains(out, "Server:\t\t127.0.0.11") || !strings.Contains(out, "Address: 172.19.0.2") {
		t.Errorf("nslookup apple-server:\n%s", out)
	}
	// Not on a shared network: forwarded, and the host has no nameserver.
	if s := status(h, "red-apple", "orange-server"); s != "SERVFAIL" {
		t.Errorf("a name the resolver does not know, with no upstream: %s", s)
	}
	// PTR, AAAA (NODATA), TTL 600, short ID and hostname.
	if got := dig(h, "apple-server", "-x", "172.18.0.3"); got != "orange-server.test-network." {
		t.Errorf("PTR: %q", got)
	}
	if s, got := status(h, "apple-server", "AAAA", "orange-server"), dig(h, "apple-server", "AAAA", "orange-server"); s != "NOERROR" || got != "" {
		t.Errorf("AAAA of an IPv4-only name: %s %q, want NOERROR and no answer", s, got)
	}
	if out := h.MustMDN("exec", "apple-server", "--", "dig", "+noall", "+answer", "orange-server"); !strings.Contains(out, "\t600\tIN\tA\t172.18.0.3") {
		t.Errorf("TTL 600:\n%s", out)
	}
	id := strings.TrimSpace(h.MustMDN("inspect", "-f", "{{.Id}}", "orange-server"))
	if got := dig(h, "apple-server", id[:12]); got != "172.18.0.3" {
		t.Errorf("the short ID: %q", got)
	}
	// ip netns exec uses the same resolv.conf.
	if !h.Ping("", "172.18.0.3") || h.Run("ip", "netns", "exec", "apple-server", "ping", "-c1", "-W1", "orange-server").Code != 0 {
		t.Errorf("ip netns exec apple-server ping orange-server")
	}
	// The default network keeps Docker's behaviour: no names, the host's servers.
	h.MustMDN("run", "-d", "--name", "plain")
	if resolv := h.MustMDN("exec", "plain", "--", "cat", "/etc/resolv.conf"); strings.Contains(resolv, "127.0.0.11") {
		t.Errorf("a sandbox on the default network only has the host's servers:\n%s", resolv)
	}
	if nat := dnsRules(h, "plain"); strings.Contains(nat, "MINIDOCKER_OUTPUT") || strings.Contains(nat, "minidocker-dns") {
		t.Errorf("no resolver rules on the default network:\n%s", nat)
	}
	if insp := h.MustMDN("inspect", "-f", "{{.MinidockerNet.DNS}}", "red-apple"); !strings.Contains(insp, "the embedded DNS (pid") {
		t.Errorf("inspect says who answers: %s", insp)
	}
	if ps := h.MustMDN("ps", "--format", "{{.Names}} {{.DNS}}", "--filter", "name=^(red-apple|plain)$"); ps != "plain \nred-apple 127.0.0.11\n" {
		t.Errorf("ps .DNS:\n%q", ps)
	}
}

// TestDNSAliasesRoundRobin: every address of a shared alias, in a new
// order at every query.
func TestDNSAliasesRoundRobin(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "n")
	for i := 1; i <= 3; i++ {
		h.MustMDN("run", "-d", "--net", "n", "--name", fmt.Sprintf("w%d", i), "--network-alias", "shared")
	}
	h.MustMDN("run", "-d", "--net", "n", "--name", "client")
	orders := map[string]bool{}
	for i := 0; i < 12; i++ {
		got := strings.Fields(dig(h, "client", "shared"))
		sorted := append([]string(nil), got...)
		sort.Strings(sorted)
		if strings.Join(sorted, " ") != "172.18.0.2 172.18.0.3 172.18.0.4" {
			t.Fatalf("shared: %v", got)
		}
		orders[strings.Join(got, " ")] = true
	}
	if len(orders) < 2 {
		t.Errorf("the addresses of a shared alias come in one order only: %v", orders)
	}
}

// TestDNSForwarding: unknown names go to the host's nameservers, from the
// host's namespace, over the client's transport; --dns servers are asked
// from the sandbox's.
func TestDNSForwarding(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet(t, h)
	// The internet's nameserver (its 198.51.100.1:53 is a UDP echo probe).
	h.Must("ip", "-n", "internet", "addr", "add", "198.51.100.53/32", "dev", "lo")
	h.Must("ip", "netns", "exec", "internet", "sh", "-c", fmt.Sprintf("setsid %s serve dns 198.51.100.53:53 >/dev/null 2>&1 < /dev/null &", probe))
	h.MustSh("for i in $(seq 100); do ip netns exec internet ss -Hltn | grep -q '198.51.100.53:53 ' && exit 0; sleep 0.02; done; exit 1")
	// The first nameserver refuses everything: Docker moves on to the next.
	h.Must("ip", "-n", "internet", "addr", "add", "198.51.100.54/32", "dev", "lo")
	h.Must("ip", "netns", "exec", "internet", "sh", "-c", fmt.Sprintf("setsid %s serve dns-refusing 198.51.100.54:53 >/dev/null 2>&1 < /dev/null &", probe))
	h.MustSh("for i in $(seq 100); do ip netns exec internet ss -Hltn | grep -q '198.51.100.54:53 ' && exit 0; sleep 0.02; done; exit 1")
	h.MustSh("printf 'nameserver 198.51.100.54\\nnameserver 198.51.100.53\\n' > /etc/resolv.conf")
	h.MustMDN("network", "create", "n")
	h.MustMDN("network", "create", "--internal", "closed")
	h.MustMDN("run", "-d", "--net", "n", "--name", "a")
	h.MustMDN("run", "-d", "--net", "closed", "--name", "inside")
	if got := dig(h, "a", "www.example.test"); got != "192.0.2.99" {
		t.Errorf("a forwarded name: %q", got)
	}
	if got := dig(h, "a", "+tcp", "TXT", "www.example.test"); got != `"via tcp"` {
		t.Errorf("a query over TCP goes upstream over TCP: %q", got)
	}
	if got := dig(h, "a", "TXT", "www.example.test"); got != `"via udp"` {
		t.Errorf("a query over UDP goes upstream over UDP: %q", got)
	}
	if s := status(h, "a", "nosuch.example"); s != "NXDOMAIN" {
		t.Errorf("upstream's NXDOMAIN: %s", s)
	}
	if resolv := h.MustMDN("exec", "a", "--", "cat", "/etc/resolv.conf"); !strings.Contains(resolv, "# ExtServers: [host(198.51.100.54) host(198.51.100.53)]") {
		t.Errorf("resolv.conf names the upstream:\n%s", resolv)
	}
	// Only internal networks: no external access, no forwarding (Docker's SERVFAIL).
	if s := status(h, "inside", "www.example.test"); s != "SERVFAIL" {
		t.Errorf("a sandbox without external access: %s", s)
	}
	// --dns: the sandbox's own server, dialed from inside it.
	h.MustSh("echo '# none' > /etc/resolv.conf")
	h.MustMDN("run", "-d", "--net", "n", "--name", "own", "--dns", "198.51.100.53", "--dns-search", "example.test", "--dns-option", "ndots:2")
	resolv := h.MustMDN("exec", "own", "--", "cat", "/etc/resolv.conf")
	hasLines(t, resolv, "nameserver 127.0.0.11", "search example.test", "options ndots:2", "# ExtServers: [198.51.100.53]")
	if got := dig(h, "own", "www.example.test"); got != "192.0.2.99" {
		t.Errorf("forwarded to --dns: %q", got)
	}
	h.Fails("is not an ip address", "run", "-d", "--net", "n", "--name", "bad", "--dns", "nope")
}

// TestResolverIsDependable: killed, it comes back with the next command
// and with doctor --fix; a flushed nat table in a sandbox is reported and
// restored; it stops with the last sandbox it serves and leaves nothing.
func TestResolverIsDependable(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	before := h.Snapshot()
	lesson(t, h)
	h.MustSh("pkill -9 -f '[_]_resolver'")
	if got := dig(h, "red-apple", "apple-server"); got != "" {
		t.Fatalf("a killed resolver answered: %q", got)
	}
	if r := h.MDN("doctor"); r.Code != 1 || !strings.Contains(r.Stdout, "the embedded DNS is not running") {
		t.Errorf("doctor with the resolver dead:\n%s", r)
	}
	h.MustMDN("run", "-d", "--net", "test-network", "--name", "next")
	if got := dig(h, "red-apple", "apple-server"); got != "172.19.0.2" {
		t.Errorf("the next command restarts the resolver: %q", got)
	}
	if got := dig(h, "orange-server", "next"); got != "172.18.0.4" {
		t.Errorf("the new name is answered right after run: %q", got)
	}
	h.MustSh("pkill -9 -f '[_]_resolver'")
	h.MustMDN("doctor", "--fix")
	if got := dig(h, "red-apple", "apple-server"); got != "172.19.0.2" {
		t.Errorf("doctor --fix restarts the resolver: %q", got)
	}
	// A flushed nat table in a sandbox.
	flush := []string{"iptables", "-t", "nat", "-F"}
	tool := "iptables-restore"
	if nftables() {
		flush, tool = []string{"nft", "flush", "ruleset"}, "nft -f"
	}
	h.Must(append([]string{"ip", "netns", "exec", "apple-server"}, flush...)...)
	if got := dig(h, "apple-server", "orange-server"); got != "" {
		t.Errorf("with its nat table flushed, the sandbox reaches no resolver: %q", got)
	}
	if r := h.MDN("doctor"); r.Code != 1 || !strings.Contains(r.Stdout, "sandbox apple-server: not in place: ip netns exec apple-server "+tool) {
		t.Errorf("doctor with a flushed nat table:\n%s", r)
	}
	h.MustMDN("restore")
	if got := dig(h, "apple-server", "orange-server"); got != "172.18.0.3" {
		t.Errorf("restore puts the rules back: %q", got)
	}
	mustBeHealthy(t, h, "after restore")
	for _, sb := range []string{"apple-server", "orange-server", "red-apple", "next"} {
		h.MustMDN("rm", "-f", sb)
	}
	if h.Running("[_]_resolver") {
		t.Errorf("the resolver runs on after its last sandbox")
	}
	h.MustMDN("network", "rm", "test-network", "applesonly")
	h.SameAs(before, "after the lesson with the embedded DNS")
	// reset stops it too, found by name.
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "s")
	h.MustSh("rm -rf " + "/run/minidocker-net-throwaway")
	h.MustMDN("reset")
	if h.Running("[_]_resolver") {
		t.Errorf("reset left the resolver")
	}
}

// TestParallelRunsResolveEachOther: sandboxes started at once each
// resolve all the others right after starting.
func TestParallelRunsResolveEachOther(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "par")
	const n = 40
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if r := h.MDN("run", "-d", "--net", "par", "--name", fmt.Sprintf("p%d", i)); r.Code != 0 {
				t.Errorf("run p%d:\n%s", i, r)
			}
		}(i)
	}
	wg.Wait()
	var names []string
	for i := 0; i < n; i++ {
		names = append(names, fmt.Sprintf("p%d", i))
	}
	// Each sandbox resolves every other one (getent, one process per sandbox).
	var mu sync.Mutex
	missing := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out := h.Run(append([]string{bin, "exec", names[i], "--", "getent", "ahostsv4"}, names...)...).Stdout
			got := map[string]bool{}
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) >= 3 {
					got[f[2]] = true
				}
			}
			mu.Lock()
			missing += n - len(got)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if missing > 0 {
		t.Errorf("%d of %d lookups found nothing", missing, n*n)
	}
}

// dnsRules are the embedded DNS's rules inside a sandbox, as the backend
// under test lists them.
func dnsRules(h *Host, sb string) string {
	h.t.Helper()
	if nftables() {
		return h.Must("ip", "netns", "exec", sb, "nft", "list", "ruleset")
	}
	return h.Must("ip", "netns", "exec", sb, "iptables", "-t", "nat", "-S")
}
