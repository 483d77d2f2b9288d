package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// internet6 is internet with documentation-range IPv6 beside IPv4: the
// uplink 2001:db8:1::1 (host) and ::2 (internet), the internet's server at
// [2001:db8:ffff::1]:81, TCP and UDP.
func internet6(t *testing.T, h *Host) {
	t.Helper()
	internet(t, h)
	h.MustSh(`ip addr add 2001:db8:1::1/64 dev up0 nodad &&
ip -n internet addr add 2001:db8:1::2/64 dev inet0 nodad &&
ip -n internet addr add 2001:db8:ffff::1/128 dev lo &&
ip -6 route add default via 2001:db8:1::2`)
	h.ServeOn("ns:internet", "tcp", "[2001:db8:ffff::1]", 81)
	h.ServeOn("ns:internet", "udp", "[2001:db8:ffff::1]", 81)
}

// TestIPv6DualStack: the apple lesson over IPv6 as over IPv4, on two
// dual-stack networks: addresses as Docker hands them out, names answered
// with AAAA, isolation between networks, TCP and UDP between sandboxes,
// outbound masquerade, a published port from outside over IPv6, and both
// rulesets as they were after teardown.
func TestIPv6DualStack(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet6(t, h)
	before := h.Snapshot()
	h.MustMDN("network", "create", "--ipv6", "test-network")
	h.MustMDN("network", "create", "--ipv6", "--subnet", "172.30.0.0/16", "--subnet", "2001:db8:30::/64", "applesonly")
	h.MustMDN("run", "-d", "--net", "test-network", "--name", "apple-server", "-p", "8080:80")
	h.MustMDN("network", "connect", "applesonly", "apple-server")
	h.MustMDN("run", "-d", "--net", "test-network", "--name", "orange-server")
	h.MustMDN("run", "-d", "--net", "applesonly", "--name", "red-apple", "--ip6", "2001:db8:30::99")

	// Addresses: the gateway ::1, the first sandbox ::2, --ip6 as given; a
	// ULA /64 without --subnet.
	var nets []struct {
		EnableIPv6 bool
		IPAM       struct {
			Config []struct{ Subnet, Gateway string }
		}
	}
	if err := json.Unmarshal([]byte(h.MustMDN("network", "inspect", "test-network", "applesonly")), &nets); err != nil {
		t.Fatal(err)
	}
	if len(nets) != 2 || !nets[0].EnableIPv6 || len(nets[0].IPAM.Config) != 2 || !strings.HasPrefix(nets[0].IPAM.Config[1].Subnet, "fd") ||
		!strings.HasSuffix(nets[0].IPAM.Config[1].Subnet, "::/64") || len(nets[1].IPAM.Config) != 2 ||
		nets[1].IPAM.Config[1] != (struct{ Subnet, Gateway string }{"2001:db8:30::/64", "2001:db8:30::1"}) {
		t.Fatalf("inspect: %+v", nets)
	}
	ula := strings.TrimSuffix(nets[0].IPAM.Config[1].Subnet, "/64")
	apple6 := h.MustMDN("inspect", "-f", `{{(index .NetworkSettings.Networks "applesonly").GlobalIPv6Address}}`, "apple-server")
	if strings.TrimSpace(apple6) != "2001:db8:30::2" {
		t.Errorf("apple-server on applesonly: %q", apple6)
	}
	orange6 := strings.TrimSpace(h.MustMDN("inspect", "-f", `{{.NetworkSettings.GlobalIPv6Address}}`, "orange-server"))
	if orange6 != strings.TrimSuffix(ula, "::")+"::3" {
		t.Errorf("orange-server: %q in %s", orange6, ula)
	}
	if got := h.MustSh("ip -n red-apple -6 route show default"); !strings.Contains(got, "via 2001:db8:30::1 dev eth0") {
		t.Errorf("red-apple's IPv6 default route: %q", got)
	}
	if got := h.MustSh("ip -n red-apple -6 addr show dev eth0"); !strings.Contains(got, "2001:db8:30::99/64 scope global nodad") {
		t.Errorf("red-apple's address, added without DAD: %q", got)
	}

	if got := h.MustSh("ip -n red-apple addr show dev lo"); !strings.Contains(got, "inet6 ::1/128") {
		t.Errorf("a dual-stack sandbox's loopback has ::1, as a Docker container's: %q", got)
	}
	if got := h.MustSh("ip -n red-apple -6 addr show dev lo; ip netns exec red-apple sysctl -n net.ipv6.conf.lo.disable_ipv6"); !strings.HasSuffix(got, "0\n") {
		t.Errorf("lo's IPv6: %q", got)
	}
	// Names: AAAA from the embedded DNS, PTR back; ping -6 by name.
	if got := dig(h, "red-apple", "AAAA", "apple-server"); got != "2001:db8:30::2" {
		t.Errorf("AAAA apple-server from red-apple: %q", got)
	}
	if got := dig(h, "red-apple", "-x", "2001:db8:30::2"); got != "apple-server.applesonly." {
		t.Errorf("PTR of apple-server's IPv6 address: %q", got)
	}
	if !h.Ping6("red-apple", "apple-server") {
		t.Error("red-apple cannot ping -6 apple-server by name")
	}
	// Isolation: red-apple is not on test-network.
	if h.Ping6("red-apple", orange6) {
		t.Errorf("red-apple reaches orange-server (%s) over IPv6 across networks", orange6)
	}
	if !h.Ping6("apple-server", orange6) {
		t.Error("apple-server cannot reach orange-server over IPv6 on their network")
	}

	// TCP and UDP between sandboxes over IPv6.
	for _, proto := range []string{"tcp", "udp"} {
		h.ServeOn("apple-server", proto, "[::]", 7000)
		if reply, ok := h.Reach("red-apple", proto, "[2001:db8:30::2]:7000"); !ok || !strings.Contains(reply, "from [2001:db8:30::99]:") {
			t.Errorf("%s over IPv6 from red-apple to apple-server: %q %v", proto, reply, ok)
		}
		// Out to the internet, as the host's uplink address.
		if reply, ok := h.Reach("red-apple", proto, "[2001:db8:ffff::1]:81"); !ok || !strings.Contains(reply, "from [2001:db8:1::1]:") {
			t.Errorf("%s over IPv6 to the internet, masqueraded: %q %v", proto, reply, ok)
		}
	}

	// Published: -p 8080:80 answers on the host's IPv6 address too.
	h.ServeOn("apple-server", "tcp", "[::]", 80)
	appleHost := strings.TrimSpace(h.MustMDN("exec", "apple-server", "--", "hostname"))
	if reply, ok := h.Reach("ns:internet", "tcp", "[2001:db8:1::1]:8080"); !ok || !strings.Contains(reply, "from [2001:db8:1::2]:") || !strings.HasSuffix(reply, "at "+appleHost) {
		t.Errorf("-p 8080:80 from outside over IPv6: %q %v", reply, ok)
	}
	// From the host itself and from a sandbox, over IPv6 as over IPv4.
	for _, from := range []string{"", "orange-server"} {
		if reply, ok := h.Reach(from, "tcp", "[2001:db8:1::1]:8080"); !ok || !strings.HasSuffix(reply, "at "+appleHost) {
			t.Errorf("-p 8080:80 over IPv6 from %q: %q %v", from, reply, ok)
		}
	}
	// [::1]:8080 is the host's own: refused at once, not lost in the
	// kernel (::1 cannot be routed into a bridge; Docker serves it with
	// docker-proxy).
	if r := h.Run(probe, "send", "tcp", "[::1]:8080", "hi"); r.Code == 0 || !strings.Contains(r.Stderr, "connection refused") {
		t.Errorf("[::1]:8080 from the host: %s", r)
	}
	if got := h.MustMDN("port", "apple-server"); got != "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n" {
		t.Errorf("port lists both families, as docker port:\n%s", got)
	}
	// [::]:PORT binds IPv6 only; 0.0.0.0:PORT IPv4 only.
	h.MustMDN("expose", "apple-server", "[::]:9090:80", "0.0.0.0:9191:80")
	if _, ok := h.Reach("ns:internet", "tcp", "[2001:db8:1::1]:9090"); !ok {
		t.Error("-p [::]:9090:80 does not answer over IPv6")
	}
	if reply, ok := h.Reach("ns:internet", "tcp", "203.0.113.1:9090"); ok {
		t.Errorf("-p [::]:9090:80 answers over IPv4: %q", reply)
	}
	if reply, ok := h.Reach("ns:internet", "tcp", "[2001:db8:1::1]:9191"); ok {
		t.Errorf("-p 0.0.0.0:9191:80 answers over IPv6: %q", reply)
	}
	h.Fails("IPv6 has no route_localnet", "expose", "apple-server", "[::1]:9292:80")
	h.MustMDN("run", "-d", "--net", "bridge", "--name", "only4")
	h.Fails("has no IPv6 address", "expose", "only4", "[::]:9393:80")
	h.MustMDN("rm", "only4")
	// Nothing unpublished gets in from outside.
	if reply, ok := h.Reach("ns:internet", "tcp", "[2001:db8:30::2]:7000"); ok {
		t.Errorf("an unpublished port reached from outside over IPv6: %q", reply)
	}
	if out := h.MustMDN("doctor"); !strings.Contains(out, "all rules in place (IPv6)") {
		t.Errorf("doctor does not check the IPv6 rules:\n%s", out)
	}

	h.MustMDN("rm", "-f", "apple-server", "orange-server", "red-apple")
	h.MustMDN("network", "rm", "test-network", "applesonly")
	h.SameAs(before, "after the IPv6 lesson's teardown")
}

// TestIPv6BadInput: malformed and hostile IPv6 options are refused, each
// with an error and no change.
func TestIPv6BadInput(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "--ipv6", "--subnet", "2001:db8:1::/64", "taken")
	h.MustMDN("network", "create", "plain")
	h.Fails("given without --ipv6", "network", "create", "--subnet", "2001:db8:2::/64", "x")
	h.Fails("not an IPv6 CIDR", "network", "create", "--ipv6", "--subnet", "2001:db8:2::%eth0/64", "x")
	h.Fails("IPv4-mapped", "network", "create", "--ipv6", "--subnet", "::ffff:10.0.0.0/104", "x")
	h.Fails("larger than a /8", "network", "create", "--ipv6", "--subnet", "::/0", "x")
	h.Fails("link-local", "network", "create", "--ipv6", "--subnet", "fe80::/64", "x")
	h.Fails("it should be 2001:db8:2::/64", "network", "create", "--ipv6", "--subnet", "2001:db8:2::5/64", "x")
	h.Fails("Pool overlaps", "network", "create", "--ipv6", "--subnet", "2001:db8:1::/48", "x")
	h.Fails("given twice", "network", "create", "--ipv6", "--subnet", "2001:db8:2::/64", "--subnet", "2001:db8:3::/64", "x")
	h.Fails("needs an IPv6 --subnet", "network", "create", "--ipv6", "--gateway", "2001:db8:2::1", "x")
	h.Fails("no matching subnet for gateway", "network", "create", "--ipv6", "--subnet", "2001:db8:2::/64", "--gateway", "2001:db8:3::1", "x")
	h.Fails("has no IPv6", "run", "-d", "--net", "plain", "--ip6", "2001:db8:1::5", "--name", "s")
	h.Fails("not an IPv6 address", "run", "-d", "--net", "taken", "--ip6", "10.0.0.5", "--name", "s")
	h.Fails("contain the IP address 2001:db8:9::5", "run", "-d", "--net", "taken", "--ip6", "2001:db8:9::5", "--name", "s")
	h.Fails("Address already in use: 2001:db8:1::1", "run", "-d", "--net", "taken", "--ip6", "2001:db8:1::1", "--name", "s")
}

// TestIPv6OnlyNetwork: --ipv4=false --ipv6 (Docker 28): sandboxes with
// IPv6 alone, names answered with AAAA only, the way out and a published
// port over IPv6, no IPv4 binding, Docker's errors, teardown as it was.
func TestIPv6OnlyNetwork(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet6(t, h)
	before := h.Snapshot()
	h.Fails("IPv4 or IPv6 must be enabled", "network", "create", "--ipv4=false", "x")
	h.Fails("given with --ipv4=false", "network", "create", "--ipv4=false", "--ipv6", "--subnet", "10.9.0.0/24", "x")
	h.MustMDN("network", "create", "--ipv4=false", "--ipv6", "--subnet", "2001:db8:60::/64", "v6only")
	h.MustMDN("run", "-d", "--net", "v6only", "--name", "a", "-p", "8080:80")
	h.MustMDN("run", "-d", "--net", "v6only", "--name", "b")
	if got := h.MustMDN("network", "ls", "--filter", "name=v6only", "--format", "{{.IPv4}} {{.IPv6}} {{.Subnet}}"); got != "false true 2001:db8:60::/64\n" {
		t.Errorf("network ls: %q", got)
	}
	if got := h.MustSh("ip -n a -4 addr show dev eth0"); strings.TrimSpace(got) != "" {
		t.Errorf("an IPv6-only sandbox has IPv4 on eth0: %q", got)
	}
	if got := h.MustSh("ip -n a -4 route"); strings.TrimSpace(got) != "" {
		t.Errorf("an IPv6-only sandbox has IPv4 routes: %q", got)
	}
	if got := dig(h, "a", "AAAA", "b"); got != "2001:db8:60::3" {
		t.Errorf("AAAA b: %q", got)
	}
	if got, st := dig(h, "a", "A", "b"), status(h, "a", "A", "b"); got != "" || st != "NOERROR" {
		t.Errorf("A of an IPv6-only name: %q %s, want NODATA", got, st)
	}
	if !h.Ping6("a", "b") {
		t.Error("a cannot ping -6 b by name")
	}
	if reply, ok := h.Reach("a", "tcp", "[2001:db8:ffff::1]:81"); !ok || !strings.Contains(reply, "from [2001:db8:1::1]:") {
		t.Errorf("out over IPv6, masqueraded: %q %v", reply, ok)
	}
	h.ServeOn("a", "tcp", "[::]", 80)
	if reply, ok := h.Reach("ns:internet", "tcp", "[2001:db8:1::1]:8080"); !ok || !strings.Contains(reply, "from [2001:db8:1::2]:") {
		t.Errorf("-p 8080:80 from outside over IPv6: %q %v", reply, ok)
	}
	if got := h.MustMDN("port", "a"); got != "80/tcp -> [::]:8080\n" {
		t.Errorf("an IPv6-only sandbox gets no IPv4 binding:\n%s", got)
	}
	if reply, ok := h.Reach("ns:internet", "tcp", "203.0.113.1:8080"); ok {
		t.Errorf("an IPv6-only sandbox's port answers over IPv4: %q", reply)
	}
	h.Fails("has no IPv4 address", "expose", "a", "127.0.0.1:9090:80")
	h.Fails("has no IPv4", "run", "-d", "--net", "v6only", "--ip", "10.0.0.5", "--name", "c")
	if out := h.MustMDN("doctor"); strings.Contains(out, "rule missing") || strings.Contains(out, "not in the records") {
		t.Errorf("doctor on an IPv6-only network:\n%s", out)
	}
	h.MustMDN("rm", "-f", "a", "b")
	h.MustMDN("network", "rm", "v6only")
	h.SameAs(before, "after the IPv6-only network's teardown")
}

// TestIPv6RepairAndReset: flushed ip6tables rules are reported by doctor
// and put back by restore; reset removes the IPv6 half too, found by name.
func TestIPv6RepairAndReset(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet6(t, h)
	before := h.Snapshot()
	h.MustMDN("network", "create", "--ipv6", "--subnet", "2001:db8:40::/64", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "a", "-p", "8080:80", "-p", "[2001:db8:1::1]:8181:80")
	h.ServeOn("a", "tcp", "[::]", 80)
	for _, addr := range []string{"[2001:db8:1::1]:8080", "[2001:db8:1::1]:8181"} {
		if _, ok := h.Reach("ns:internet", "tcp", addr); !ok {
			t.Errorf("%s does not answer from outside", addr)
		}
	}
	flush, missing := "ip6tables -t nat -F MINIDOCKER", "rule missing (IPv6): ip6tables -t nat -A MINIDOCKER ! -s fe80::/10 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [2001:db8:40::2]:80"
	if nftables() {
		flush = "nft flush map ip6 minidocker-bridges dnat-ports-any && nft flush map ip6 minidocker-bridges dnat-ports-addr"
		missing = "rule missing (IPv6): nft element ip6 minidocker-bridges dnat-ports-any { tcp . 8080 : 2001:db8:40::2 . 80 }"
	}
	h.MustSh(flush)
	if _, ok := h.Reach("ns:internet", "tcp", "[2001:db8:1::1]:8080"); ok {
		t.Fatal("the port answers with its DNAT flushed")
	}
	if out := h.MDN("doctor").Stdout; !strings.Contains(out, missing) ||
		!strings.Contains(out, "(sandbox a: 80/tcp -> [2001:db8:1::1]:8181)") {
		t.Errorf("doctor does not report the flushed IPv6 DNAT:\n%s", out)
	}
	h.MustMDN("restore")
	if out := h.MustMDN("doctor"); !strings.Contains(out, "all rules in place (IPv6)") {
		t.Errorf("after restore:\n%s", out)
	}
	if _, ok := h.Reach("ns:internet", "tcp", "[2001:db8:1::1]:8080"); !ok {
		t.Error("restore did not bring the IPv6 port back")
	}
	h.MustMDN("reset")
	h.SameAs(before, "after reset with an IPv6 network")
}

// TestTraceIPv6: trace explains IPv6 packets with IPv6's addresses,
// routes and ip6tables rules, and a real probe agrees each time.
func TestTraceIPv6(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet6(t, h)
	h.MustMDN("network", "create", "--ipv6", "--subnet", "2001:db8:30::/64", "apples")
	h.MustMDN("network", "create", "--ipv6", "--subnet", "2001:db8:31::/64", "oranges")
	h.MustMDN("network", "create", "--ipv4=false", "--ipv6", "--subnet", "2001:db8:32::/64", "six")
	h.MustMDN("run", "-d", "--net", "apples", "--name", "a", "-p", "8080:80")
	h.MustMDN("run", "-d", "--net", "apples", "--name", "b")
	h.MustMDN("run", "-d", "--net", "oranges", "--name", "o")
	h.MustMDN("run", "-d", "--net", "six", "--name", "s")
	h.ServeOn("a", "tcp", "[::]", 80)
	direct := "raw PREROUTING drops it: -A MINIDOCKER-PREROUTING -d 2001:db8:30::/64 ! -i mdn-apples -j DROP"
	if nftables() {
		direct = `nft raw-PREROUTING drops it: iifname != "mdn-apples" ip6 daddr 2001:db8:30::/64 ip6 daddr != 2001:db8:30::1 drop comment "DROP DIRECT ACCESS"`
	}
	h.Traces([]traceCase{
		{[]string{"--probe", "-6", "a", "b"}, 0, "neighbour discovery finds b eth0 on bridge mdn-apples"},
		{[]string{"--probe", "o", "2001:db8:30::2"}, 1, direct},
		{[]string{"--probe", "s", "[2001:db8:ffff::1]:81"}, 0, "MASQUERADE: the source becomes up0's address"},
		{[]string{"--probe", "host", "[2001:db8:1::1]:8080"}, 0, "DNAT [2001:db8:1::1]:8080 -> [2001:db8:30::2]:80"},
		{[]string{"--probe", "-6", "o", "[2001:db8:1::1]:8080"}, 0, "arrives at a eth0 ([2001:db8:30::2]:80)"},
		{[]string{"2001:db8:1::2", "[2001:db8:1::1]:8080"}, 0, "arrives at a eth0"},
		// ::1 is left to the host (the kernel cannot route it into a
		// bridge): the connection is refused there, not lost.
		{[]string{"--probe", "host", "[::1]:8080"}, 0, "arrives: ::1 is the host's own address"},
		{[]string{"2001:db8:1::2", "[2001:db8:30::2]:80"}, 1, "no direct routing to its sandboxes from off the bridge"},
	}, "over IPv6")
}

// TestIPv6Internal: an --internal dual-stack network keeps IPv6 inside as
// it keeps IPv4: its sandboxes reach each other, not the outside, and
// have no IPv6 default route.
func TestIPv6Internal(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet6(t, h)
	h.MustMDN("network", "create", "--internal", "--ipv6", "--subnet", "2001:db8:50::/64", "closed")
	h.MustMDN("run", "-d", "--net", "closed", "--name", "a")
	h.MustMDN("run", "-d", "--net", "closed", "--name", "b")
	if !h.Ping6("a", "b") {
		t.Error("sandboxes on an internal IPv6 network cannot reach each other")
	}
	if reply, ok := h.Reach("a", "tcp", "[2001:db8:ffff::1]:81"); ok {
		t.Errorf("an internal network reaches outside over IPv6: %q", reply)
	}
	if got := h.MustSh("ip -n a -6 route show default"); strings.TrimSpace(got) != "" {
		t.Errorf("an internal network carries an IPv6 default route: %q", got)
	}
	// The rules are in ip6tables-save's own words (doctor finds each).
	if out := h.MustMDN("doctor"); !strings.Contains(out, "all rules in place (IPv6)") {
		t.Errorf("doctor:\n%s", out)
	}
}
