package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// otherHost adds a namespace "client" that plays another machine on the
// host's LAN: the host is 203.0.113.1 there, the client 203.0.113.2.
func otherHost(t *testing.T, h *Host) {
	t.Helper()
	h.MustSh(`ip netns add client &&
ip link add up0 type veth peer name c0 netns client &&
ip addr add 203.0.113.1/24 dev up0 && ip link set up0 up &&
ip -n client addr add 203.0.113.2/24 dev c0 && ip -n client link set c0 up && ip -n client link set lo up`)
}

func TestPublishedPortPaths(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	otherHost(t, h)
	h.MustMDN("network", "create", "web")
	h.MustMDN("network", "create", "other")
	h.MustMDN("run", "-d", "--net", "web", "--name", "srv", "--hostname", "srv", "-p", "45678:45678", "-p", "45678:45678/udp", "-p", "127.0.0.1:8080:8080", "-p", "8081:80")
	h.MustMDN("run", "-d", "--net", "web", "--name", "peer")
	h.MustMDN("run", "-d", "--net", "other", "--name", "far")
	for _, s := range []struct {
		proto string
		port  int
	}{{"tcp", 45678}, {"udp", 45678}, {"tcp", 8080}, {"tcp", 80}, {"tcp", 7000}} {
		h.Serve("srv", s.proto, s.port)
	}
	paths := []struct{ name, from, addr string }{
		{"1: from another host to the host's address", "ns:client", "203.0.113.1:45678"},
		{"2: from the host to its own address", "", "203.0.113.1:45678"},
		{"2: from the host to 127.0.0.1", "", "127.0.0.1:45678"},
		{"2: from the host to localhost", "", "localhost:45678"},
		{"3: from a neighbour to host.docker.internal", "peer", "host.docker.internal:45678"},
		{"3: from a neighbour to the host's address", "peer", "203.0.113.1:45678"},
		{"3: from the sandbox to its own published port", "srv", "host.docker.internal:45678"},
		{"4: from another network to host.docker.internal", "far", "host.docker.internal:45678"},
	}
	for _, p := range paths {
		for _, proto := range []string{"tcp", "udp"} {
			if reply, ok := h.Reach(p.from, proto, p.addr); !ok || !strings.Contains(reply, " at srv") {
				t.Errorf("path %s (%s %s): %q", p.name, proto, p.addr, reply)
			}
		}
	}
	// A different host port onto another container port.
	if reply, ok := h.Reach("ns:client", "tcp", "203.0.113.1:8081"); !ok {
		t.Errorf("8081->80: %q", reply)
	}
	// Published on 127.0.0.1: the host only.
	if _, ok := h.Reach("", "tcp", "127.0.0.1:8080"); !ok {
		t.Errorf("127.0.0.1:8080 from the host")
	}
	if reply, ok := h.Reach("ns:client", "tcp", "203.0.113.1:8080"); ok {
		t.Errorf("a port published on 127.0.0.1 answered another host: %q", reply)
	}
	// Nobody routes to a sandbox directly: not to an unpublished port, not
	// to a published one by the sandbox's own address (as Docker 28).
	h.Must("ip", "-n", "client", "route", "add", "172.18.0.0/16", "via", "203.0.113.1")
	for _, addr := range []string{"172.18.0.2:7000", "172.18.0.2:45678"} {
		if reply, ok := h.Reach("ns:client", "tcp", addr); ok {
			t.Errorf("direct routing to %s from another host worked: %q", addr, reply)
		}
	}
	if h.Ping("ns:client", "172.18.0.2") {
		t.Errorf("another host pings the sandbox directly")
	}
	// A neighbour on the same network reaches unpublished ports directly.
	if _, ok := h.Reach("peer", "tcp", "srv:7000"); !ok {
		t.Errorf("neighbours talk freely")
	}

	ports := h.MustMDN("port", "srv")
	hasLines(t, ports, "45678/tcp -> 0.0.0.0:45678", "45678/udp -> 0.0.0.0:45678", "8080/tcp -> 127.0.0.1:8080", "80/tcp -> 0.0.0.0:8081")
	if ps := h.MustMDN("ps"); !strings.Contains(ps, "0.0.0.0:45678->45678/tcp, 0.0.0.0:45678->45678/udp, 127.0.0.1:8080->8080/tcp") {
		t.Errorf("ps ports:\n%s", ps)
	}
	insp := h.MustMDN("inspect", "srv")
	if !strings.Contains(insp, `"45678/udp": [`) || !strings.Contains(insp, `"HostIp": "127.0.0.1"`) {
		t.Errorf("inspect ports:\n%s", insp)
	}
	// No proxy process: the kernel does it all.
	if r := h.Run("pgrep", "-f", "proxy"); r.Code == 0 {
		t.Errorf("a proxy process runs: %s", r.Stdout)
	}
}

func TestEchoRelayLessonWithNc(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("run", "-d", "--name", "echo-server", "-p", "45678:45678", "-p", "45679:45679", "--",
		"sh", "-c", "nc -lp 45678 | nc -lp 45679")
	h.MustMDN("run", "-d", "--name", "other")
	h.MustMDN("network", "create", "elsewhere")
	h.MustMDN("run", "-d", "--net", "elsewhere", "--name", "far")
	waitListen := "for i in $(seq 100); do ss -Hltn | grep -q ':45679 ' && ss -Hltn | grep -q ':45678 ' && exit 0; sleep 0.02; done; exit 1"
	h.Must(in("echo-server", "sh", "-c", waitListen)...)
	relay := func(reader, writer, host string) {
		t.Helper()
		// The reader connects first (terminal 2), then the writer types (terminal 1).
		script := fmt.Sprintf(`out=$(mktemp)
%s > "$out" &
r=$!
sleep 0.3
printf 'hello from %s\n' | %s
for i in $(seq 50); do grep -q 'hello from' "$out" && break; sleep 0.05; done
kill $r 2>/dev/null; cat "$out"`,
			strings.Join(in(reader, "timeout", "5", "nc", host, "45679"), " "), writer,
			strings.Join(in(writer, "nc", "-q1", host, "45678"), " "))
		out := h.MustSh(script)
		if !strings.Contains(out, "hello from "+writer) {
			t.Errorf("relay %s -> %s via %s: got %q", writer, reader, host, out)
		}
	}
	relay("", "", "localhost")
	h.MustMDN("rm", "-f", "echo-server")
	h.MustMDN("run", "-d", "--name", "echo-server", "-p", "45678:45678", "-p", "45679:45679", "--",
		"sh", "-c", "nc -lp 45678 | nc -lp 45679")
	h.Must(in("echo-server", "sh", "-c", waitListen)...)
	relay("other", "far", "host.docker.internal")
}

func TestLocalhostIsNotExposed(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "attacker")
	// A service only the host should see; it logs what reaches it.
	h.MustSh(fmt.Sprintf("setsid %s serve udp 127.0.0.1:9999 > /tmp/local.log 2>&1 < /dev/null &", probe))
	h.MustSh("for i in $(seq 100); do ss -Hlun | grep -q '127.0.0.1:9999 ' && exit 0; sleep 0.02; done; exit 1")
	// The attacker sends to 127.0.0.1 out of eth0 towards the bridge: drop
	// its own loopback routes and allow 127/8 on its eth0.
	h.MustSh(`ip netns exec attacker sh -c '
ip route del local 127.0.0.0/8 dev lo table local; ip route del local 127.0.0.1 dev lo table local
sysctl -qw net.ipv4.conf.eth0.route_localnet=1 net.ipv4.conf.all.route_localnet=1
ip route add 127.0.0.0/8 via 172.18.0.1 dev eth0'`)
	attack := func(token string) bool {
		h.Run(in("ns:attacker", probe, "send", "udp", "127.0.0.1:9999", token)...)
		return strings.Contains(h.Must("cat", "/tmp/local.log"), token)
	}
	if attack("first-attempt") {
		t.Fatalf("a sandbox reached the host's 127.0.0.1 service (CVE-2020-8558)")
	}
	// The test can fail: without the raw drop rule the datagram gets
	// through, since route_localnet is on for the bridge.
	del := "iptables -t raw -D MINIDOCKER-PREROUTING -d 127.0.0.0/8 -i mdn-n -j DROP"
	add := "iptables -t raw -I MINIDOCKER-PREROUTING -d 127.0.0.0/8 -i mdn-n -j DROP"
	if nftables() {
		del = `nft delete rule ip minidocker-bridges raw-PREROUTING handle $(nft -a list chain ip minidocker-bridges raw-PREROUTING | grep '127.0.0.0/8 drop' | sed 's/.*handle //')`
		add = `nft insert rule ip minidocker-bridges raw-PREROUTING iifname "mdn-n" ip daddr 127.0.0.0/8 drop`
	}
	h.MustSh(del)
	if !attack("without-the-rule") {
		t.Errorf("without the drop rule the attack should succeed; the test would prove nothing")
	}
	h.MustSh(add)
	if v := strings.TrimSpace(h.Must("cat", "/proc/sys/net/ipv4/conf/all/route_localnet")); v != "0" {
		t.Errorf("route_localnet host-wide: %s", v)
	}
}

func TestPortConflictsAndBadInput(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("run", "-d", "--name", "a", "-p", "45678:45678", "-p", "127.0.0.1:5000:5000")
	h.MustMDN("run", "-d", "--name", "b")
	h.MustMDN("network", "create", "--internal", "closed")
	h.MustMDN("run", "-d", "--net", "closed", "--name", "c")
	h.ServeOn("", "tcp", "0.0.0.0", 6000) // a host process holds 6000/tcp
	cases := []struct {
		want string
		args []string
	}{
		{"Bind for 0.0.0.0:45678 failed: port is already allocated", []string{"run", "-d", "--name", "x", "-p", "45678:45678"}},
		{"Bind for 0.0.0.0:45678 failed: port is already allocated", []string{"expose", "b", "127.0.0.1:45678:1"}},
		{"Bind for 127.0.0.1:5000 failed: port is already allocated", []string{"expose", "b", "5000"}},
		{"Bind for 0.0.0.0:45678 failed: port is already allocated", []string{"expose", "b", "45670-45680:45670-45680"}},
		{"Bind for 0.0.0.0:7000 failed: port is already allocated", []string{"expose", "b", "7000", "7000:80"}},
		{"failed to bind host port for 0.0.0.0:6000:172.17.0.3:6000/tcp: address already in use", []string{"expose", "b", "6000"}},
		{"port 0 is outside 1-65535", []string{"expose", "b", "0:80"}},
		{"port 70000 is outside 1-65535", []string{"run", "-d", "--name", "x", "-p", "70000:80"}},
		{"invalid port spec \"80:abc\"", []string{"expose", "b", "80:abc"}},
		{"IPv6 has no route_localnet", []string{"expose", "b", "[::1]:80:80"}},
		{"has no IPv6 address", []string{"expose", "b", "[::]:80:80"}},
		{"protocol must be tcp or udp", []string{"expose", "b", "80/sctp"}},
		{"No such sandbox: ghost", []string{"expose", "ghost", "80"}},
		{"not an address of this host", []string{"expose", "b", "10.9.9.9:80:80"}},
		{"internal networks cannot publish", []string{"expose", "c", "80"}},
		{"sandbox b has no published port matching 45678", []string{"unexpose", "b", "45678"}},
		{"published ports are discarded when using host network mode", []string{"run", "-d", "--net", "host", "--name", "x", "-p", "80"}},
	}
	for _, c := range cases {
		h.Fails(c.want, c.args...)
	}
	// Same port, other protocol: fine. Different host address: fine.
	h.MustMDN("expose", "b", "45678/udp", "127.0.0.2:5000:5000")
	// No host port: a free one from the ephemeral range, lowest first.
	out := h.MustMDN("expose", "b", "127.0.0.1::80")
	if !strings.Contains(out, "80/tcp -> 127.0.0.1:32768") {
		t.Errorf("random port: %s", out)
	}
}

func TestUnexposeAndRmRestoreRulesExactly(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	otherHost(t, h)
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "a", "--hostname", "a")
	h.MustMDN("run", "-d", "--net", "n", "--name", "b", "--hostname", "b")
	h.Serve("a", "udp", 5353)
	h.Serve("b", "udp", 5353)
	before := h.Snapshot()
	h.MustMDN("expose", "a", "5353/udp", "45678", "9000-9009:8000-8009")
	// A client keeps its source port: conntrack would keep sending it to a.
	if reply, ok := h.Reach("ns:client", "udp", "203.0.113.1:5353"); !ok || !strings.Contains(reply, " at a") {
		t.Fatalf("udp to a: %q", reply)
	}
	h.Must(in("ns:client", probe, "send", "udp", "203.0.113.1:5353", "x", "40000")...)
	h.MustMDN("unexpose", "a", "5353/udp", "45678", "9000-9009:8000-8009")
	h.SameAs(before, "after unexpose")
	h.MustMDN("expose", "b", "5353/udp")
	// The stale entry was flushed: the same client port now reaches b.
	r := h.Run(in("ns:client", probe, "send", "udp", "203.0.113.1:5353", "x", "40000")...)
	if r.Code != 0 || !strings.Contains(r.Stdout, " at b") {
		t.Errorf("after moving 5353/udp to b, the same client reached: %s", r)
	}
	h.MustMDN("rm", "-f", "b")
	h.MustMDN("rm", "-f", "a")
	h.MustMDN("network", "rm", "n")
	if s := h.Must("iptables-save") + h.Must("nft", "list", "ruleset"); strings.TrimSpace(s) != "" {
		t.Errorf("a host that had no ruleset has none after the last rm:\n%s", s)
	}
}

// Two host ports to one container port share the ACCEPT rule: removing
// one mapping must leave the other working.
func TestUnexposeOneOfTwoMappingsToOnePort(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	otherHost(t, h)
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "s", "--hostname", "s", "-p", "8080:80", "-p", "8081:80")
	h.Serve("s", "tcp", 80)
	h.MustMDN("unexpose", "s", "8081:80")
	if reply, ok := h.Reach("ns:client", "tcp", "203.0.113.1:8080"); !ok || !strings.Contains(reply, " at s") {
		t.Errorf("8080 after unexposing 8081: %q", reply)
	}
	if reply, ok := h.Reach("ns:client", "tcp", "203.0.113.1:8081"); ok {
		t.Errorf("8081 still answers after unexpose: %q", reply)
	}
}

func TestPortsFollowTheGateway(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	otherHost(t, h)
	h.MustMDN("network", "create", "zzz")
	h.MustMDN("network", "create", "aaa")
	h.MustMDN("run", "-d", "--net", "zzz", "--name", "s", "-p", "45678:7000")
	h.Serve("s", "tcp", 7000)
	if reply, ok := h.Reach("ns:client", "tcp", "203.0.113.1:45678"); !ok || !strings.Contains(reply, "from 203.0.113.2") {
		t.Fatalf("before connect: %q", reply)
	}
	h.MustMDN("network", "connect", "aaa", "s")
	dnat := "--dport 45678 -j DNAT --to-destination 172.19.0.2:7000"
	if nftables() {
		dnat = "tcp . 45678 : 172.19.0.2 . 7000"
	}
	if !strings.Contains(h.Ruleset(), dnat) {
		t.Errorf("the DNAT should follow the default route to aaa")
	}
	if reply, ok := h.Reach("ns:client", "tcp", "203.0.113.1:45678"); !ok {
		t.Errorf("after connect: %q", reply)
	}
}

func TestThousandPublishedPorts(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "many")
	before := h.Snapshot()
	specs := make([]string, 0, 1000)
	for p := 20000; p < 21000; p++ {
		specs = append(specs, strconv.Itoa(p))
	}
	start := time.Now()
	h.MustMDN(append([]string{"expose", "many"}, specs...)...)
	took := time.Since(start)
	t.Logf("expose with 1000 separate ports took %v", took)
	if took > time.Second {
		t.Errorf("1000 published ports must set up in well under a second, took %v", took)
	}
	h.Serve("many", "tcp", 20777)
	if _, ok := h.Reach("", "tcp", "127.0.0.1:20777"); !ok {
		t.Errorf("port 20777 of 1000 does not answer")
	}
	start = time.Now()
	h.MustMDN("expose", "many", "30000-30999:30000-30999")
	t.Logf("expose of a 1000-port range took %v", time.Since(start))
	if nftables() {
		// A range is an element per port: each is one lookup away.
		if n := strings.Count(h.Ruleset(), " : 172.18.0.2 . 30"); n != 1000 {
			t.Errorf("a 1000-port range is 1000 DNAT elements, found %d", n)
		}
	} else if n := strings.Count(h.Must("iptables-save", "-t", "nat"), "30000:30999"); n != 2 {
		t.Errorf("a range is one DNAT and one masquerade rule, found %d lines", n)
	}
	h.MustMDN("unexpose", "many", "30000-30999:30000-30999")
	h.MustMDN(append([]string{"unexpose", "many"}, specs...)...)
	h.SameAs(before, "after unexposing 2000 ports")
}

// TestRmAfterPortsFlushedByHand: with part of a sandbox's published
// ports flushed by hand, its rm removes the rest, promptly, and leaves
// the host as it was before the sandbox. (With nftables, the kernel's
// answers to 10,000 failed deletions once overflowed the socket, and rm
// waited for ever.)
func TestRmAfterPortsFlushedByHand(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "n")
	before := h.Snapshot()
	h.MustMDN("run", "-d", "--net", "n", "--name", "many")
	n, flush := 1000, "iptables -t nat -F MINIDOCKER"
	if nftables() {
		n, flush = 10000, "nft flush map ip minidocker-bridges dnat-ports-any"
	}
	specs := make([]string, 0, n)
	for p := 20000; p < 20000+n; p++ {
		specs = append(specs, strconv.Itoa(p))
	}
	h.MustMDN(append([]string{"expose", "many"}, specs...)...)
	h.MustSh(flush)
	start := time.Now()
	h.MustMDN("rm", "-f", "many")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("rm took %v", took)
	}
	h.SameAs(before, "after rm of a sandbox whose ports were partly flushed")
}
