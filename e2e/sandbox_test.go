package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
)

// lesson builds the apple/orange/red-apple topology of the README.
func lesson(t *testing.T, h *Host) {
	t.Helper()
	h.MustMDN("network", "create", "test-network")
	h.MustMDN("run", "-d", "--net", "test-network", "--name", "apple-server")
	h.MustMDN("run", "-d", "--net", "test-network", "--name", "orange-server")
	h.MustMDN("network", "create", "applesonly")
	h.MustMDN("network", "connect", "applesonly", "apple-server")
	h.MustMDN("run", "-d", "--net", "applesonly", "--name", "red-apple")
}

// Addresses in the lesson: the same as on Docker for the same commands.
var lessonIPs = map[string]string{
	"apple-server/test-network": "172.18.0.2",
	"apple-server/applesonly":   "172.19.0.2",
	"orange-server":             "172.18.0.3",
	"red-apple":                 "172.19.0.3",
}

func TestAppleOrangeLesson(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	before := h.Snapshot()
	lesson(t, h)

	// Names: each sandbox resolves its neighbours on shared networks, itself
	// and host.docker.internal; nothing else of ours.
	names := []struct{ from, name, want string }{
		{"red-apple", "apple-server", "172.19.0.2"},
		{"red-apple", "orange-server", ""},
		{"red-apple", "red-apple", "172.19.0.3"},
		{"red-apple", "host.docker.internal", "172.19.0.1"},
		{"orange-server", "apple-server", "172.18.0.2"},
		{"orange-server", "red-apple", ""},
		{"apple-server", "orange-server", "172.18.0.3"},
		{"apple-server", "red-apple", "172.19.0.3"},
		{"apple-server", "host.docker.internal", "172.19.0.1"}, // its gateway moved to applesonly
	}
	for _, n := range names {
		if got := h.Resolves(n.from, n.name); got != n.want {
			t.Errorf("in %s, %s resolves to %q, want %q", n.from, n.name, got, n.want)
		}
	}
	// `ip netns exec` sees the same names.
	if r := h.Run("ip", "netns", "exec", "apple-server", "getent", "hosts", "orange-server"); !strings.HasPrefix(r.Stdout, "172.18.0.3") {
		t.Errorf("ip netns exec resolution:\n%s", r)
	}

	// Reachability by address, ICMP, TCP and UDP: inside a network yes,
	// across networks no, the dual-homed apple-server both ways.
	for _, sb := range []string{"apple-server", "orange-server", "red-apple"} {
		h.Serve(sb, "tcp", 7000)
		h.Serve(sb, "udp", 7001)
	}
	matrix := []struct {
		from, to, ip string
		want         bool
	}{
		{"red-apple", "apple-server", "172.19.0.2", true},
		{"red-apple", "apple-server", "172.18.0.2", false}, // its other network
		{"red-apple", "orange-server", "172.18.0.3", false},
		{"orange-server", "red-apple", "172.19.0.3", false},
		{"orange-server", "apple-server", "172.18.0.2", true},
		{"apple-server", "orange-server", "172.18.0.3", true},
		{"apple-server", "red-apple", "172.19.0.3", true},
	}
	for _, m := range matrix {
		if got := h.Ping(m.from, m.ip); got != m.want {
			t.Errorf("ping %s -> %s (%s): got %v, want %v", m.from, m.to, m.ip, got, m.want)
		}
		for _, proto := range []string{"tcp", "udp"} {
			port := map[string]string{"tcp": "7000", "udp": "7001"}[proto]
			reply, got := h.Reach(m.from, proto, m.ip+":"+port)
			if got != m.want {
				t.Errorf("%s %s -> %s (%s): got %v (%s), want %v", proto, m.from, m.to, m.ip, got, reply, m.want)
			}
		}
	}

	// apple-server's default route moved to applesonly (lower name), as on Docker.
	if r := h.Must("ip", "-n", "apple-server", "route", "show", "default"); !strings.Contains(r, "via 172.19.0.1 dev eth1") {
		t.Errorf("apple-server default route: %s", r)
	}
	var insp []struct {
		NetworkSettings struct {
			Networks map[string]struct {
				IPAddress, Gateway, MacAddress string
			}
		}
		MinidockerNet struct{ GatewayNetwork string }
	}
	if err := json.Unmarshal([]byte(h.MustMDN("inspect", "apple-server")), &insp); err != nil {
		t.Fatal(err)
	}
	nets := insp[0].NetworkSettings.Networks
	if nets["test-network"].IPAddress != "172.18.0.2" || nets["applesonly"].IPAddress != "172.19.0.2" ||
		nets["applesonly"].MacAddress != "02:42:ac:13:00:02" || insp[0].MinidockerNet.GatewayNetwork != "applesonly" {
		t.Errorf("inspect apple-server: %+v", insp[0])
	}

	// Interfaces inside: eth0, eth1 with Docker 20.10's MACs, IPv4 only.
	addrs := h.Must("ip", "-n", "apple-server", "-o", "addr")
	if !strings.Contains(addrs, "eth0    inet 172.18.0.2/16") || !strings.Contains(addrs, "eth1    inet 172.19.0.2/16") || strings.Contains(addrs, "inet6") {
		t.Errorf("apple-server addresses:\n%s", addrs)
	}

	// Disconnect moves the gateway back and updates names everywhere.
	h.MustMDN("network", "disconnect", "applesonly", "apple-server")
	if got := h.Resolves("red-apple", "apple-server"); got != "" {
		t.Errorf("after disconnect red-apple still resolves apple-server to %s", got)
	}
	if r := h.Must("ip", "-n", "apple-server", "route", "show", "default"); !strings.Contains(r, "via 172.18.0.1 dev eth0") {
		t.Errorf("default route after disconnect: %s", r)
	}

	for _, sb := range []string{"apple-server", "orange-server", "red-apple"} {
		h.MustMDN("rm", "-f", sb)
	}
	h.MustMDN("network", "rm", "test-network", "applesonly")
	h.SameAs(before, "after removing the lesson")
}

// internet builds a namespace that plays "the internet": the host's default
// route points into it, and a server there answers on 198.51.100.1.
func internet(t *testing.T, h *Host) {
	t.Helper()
	h.MustSh(`ip netns add internet &&
ip link add up0 type veth peer name inet0 netns internet &&
ip addr add 203.0.113.1/24 dev up0 && ip link set up0 up &&
ip -n internet addr add 203.0.113.2/24 dev inet0 && ip -n internet link set inet0 up && ip -n internet link set lo up &&
ip -n internet addr add 198.51.100.1/32 dev lo &&
ip route add default via 203.0.113.2`)
	h.Serve("ns:internet", "tcp", 80)
	h.ServeOn("ns:internet", "udp", "198.51.100.1", 53)
}

func TestOutboundMasquerade(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet(t, h)
	h.MustMDN("network", "create", "out")
	h.MustMDN("network", "create", "-o", "masquerade=false", "plain")
	h.MustMDN("network", "create", "--internal", "closed")
	h.MustMDN("run", "-d", "--net", "out", "--name", "a")
	h.MustMDN("run", "-d", "--net", "plain", "--name", "b")
	h.MustMDN("run", "-d", "--net", "closed", "--name", "c")
	for _, proto := range []string{"tcp", "udp"} {
		port := map[string]string{"tcp": "80", "udp": "53"}[proto]
		reply, ok := h.Reach("a", proto, "198.51.100.1:"+port)
		if !ok || !strings.Contains(reply, "from 203.0.113.1:") {
			t.Errorf("%s from a sandbox should reach the internet as the host (203.0.113.1): %q %v", proto, reply, ok)
		}
		// Without masquerade the source stays the sandbox's; the internet has
		// no route back, so no reply arrives.
		if reply, ok := h.Reach("b", proto, "198.51.100.1:"+port); ok {
			t.Errorf("%s with masquerade=false got a reply: %q", proto, reply)
		}
		if reply, ok := h.Reach("c", proto, "198.51.100.1:"+port); ok {
			t.Errorf("%s from an internal network reached outside: %q", proto, reply)
		}
	}
	if h.Ping("c", "198.51.100.1") || h.Ping("c", "203.0.113.1") {
		t.Errorf("an internal network must reach nothing outside its subnet")
	}
	if r := h.Run("ip", "-n", "c", "route", "show", "default"); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("a sandbox on an internal network gets no default route: %s", r.Stdout)
	}
}

func TestForwardPolicyDropHost(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet(t, h)
	// What a host running Docker looks like: forwarding on, policy DROP.
	h.MustSh("sysctl -qw net.ipv4.ip_forward=1 && iptables -P FORWARD DROP")
	before := h.Snapshot()
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "a")
	h.MustMDN("run", "-d", "--net", "n", "--name", "b")
	h.Serve("b", "tcp", 7000)
	if _, ok := h.Reach("a", "tcp", "b:7000"); !ok {
		t.Errorf("sandboxes on one network must talk under FORWARD DROP")
	}
	if _, ok := h.Reach("a", "tcp", "198.51.100.1:80"); !ok {
		t.Errorf("outbound traffic must work under FORWARD DROP")
	}
	h.MustMDN("rm", "-f", "a", "b")
	h.MustMDN("network", "rm", "n")
	h.SameAs(before, "after cleanup on a DROP-policy host (policy and ip_forward untouched)")
}

func TestHostAndNoneModes(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("create", "n")
	links := h.MustMDN("run", "--rm", "--net", "host", "--name", "hostmode", "--", "ip", "-o", "link")
	if !strings.Contains(links, "mdn-n") {
		t.Errorf("--net host sees the host's interfaces, got:\n%s", links)
	}
	addrs := h.MustMDN("run", "--rm", "--net", "none", "--name", "nonet", "--", "ip", "-o", "addr")
	if strings.TrimSpace(addrs) != strings.TrimSpace(strings.Split(addrs, "\n")[0]) || !strings.Contains(addrs, "lo    inet 127.0.0.1/8") {
		t.Errorf("--net none has loopback only, got:\n%s", addrs)
	}
	h.MustMDN("run", "-d", "--net", "none", "--name", "quiet")
	h.Fails("cannot be connected to multiple networks with one of the networks in private (none) mode", "network", "connect", "n", "quiet")
	h.MustMDN("run", "-d", "--net", "host", "--name", "onhost", "--", "sleep", "60")
	h.Fails("shares the host's network namespace", "network", "connect", "n", "onhost")
	ps := h.MustMDN("ps")
	if !strings.Contains(ps, "onhost") || !strings.Contains(ps, "sleep 60") || !strings.Contains(ps, "quiet") {
		t.Errorf("ps:\n%s", ps)
	}
	h.MustMDN("rm", "-f", "onhost", "quiet")
	if r := h.Run("pgrep", "-f", "sleep 60"); r.Code == 0 {
		t.Errorf("rm -f left the host-mode process running: %s", r.Stdout)
	}
	// Exit status and --rm.
	if r := h.MDN("run", "--rm", "--net", "n", "--name", "exits", "--", "sh", "-c", "exit 7"); r.Code != 7 {
		t.Errorf("run returns the command's status, got:\n%s", r)
	}
	if strings.Contains(h.MustMDN("ps", "-q"), "exits") {
		t.Errorf("--rm left the sandbox")
	}
}

func TestDefaultNetworkAndGatewayPriority(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("run", "-d", "--name", "d1")
	h.MustMDN("run", "-d", "--name", "d2", "--add-host", "db:10.1.2.3", "--add-host", "me:host-gateway", "--hostname", "box")
	if a := h.Must("ip", "-o", "-4", "addr", "show", "mdn0"); !strings.Contains(a, "172.17.0.1/16") {
		t.Errorf("default network bridge: %s", a)
	}
	if !h.Ping("d1", "172.17.0.3") {
		t.Errorf("sandboxes on the default network reach each other by address")
	}
	if got := h.Resolves("d1", "d2"); got != "" {
		t.Errorf("the default network gives no name resolution between sandboxes, d2 -> %s", got)
	}
	for name, want := range map[string]string{"d2": "172.17.0.3", "box": "172.17.0.3", "db": "10.1.2.3", "me": "172.17.0.1", "host.docker.internal": "172.17.0.1"} {
		if got := h.Resolves("d2", name); got != want {
			t.Errorf("in d2 %s -> %q, want %s", name, got, want)
		}
	}
	if hn := strings.TrimSpace(h.MustMDN("exec", "d2", "--", "hostname")); hn != "box" {
		t.Errorf("hostname %q", hn)
	}
	h.Fails("user specified IP address is supported on user defined networks only", "run", "-d", "--ip", "172.17.0.9", "--name", "x")
	h.Fails("network-scoped alias is supported only for containers in user defined networks", "run", "-d", "--network-alias", "y", "--name", "x")
	h.Fails("bridge is a pre-defined network and cannot be removed", "network", "rm", "bridge")

	// Gateway selection: priority, then name.
	h.MustMDN("network", "create", "bbb")
	h.MustMDN("network", "create", "aaa")
	h.MustMDN("network", "create", "ccc")
	h.MustMDN("run", "-d", "--net", "bbb", "--name", "g")
	h.MustMDN("network", "connect", "aaa", "g")
	if r := h.Must("ip", "-n", "g", "route", "show", "default"); !strings.Contains(r, "dev eth1") {
		t.Errorf("aaa sorts first and takes the default route: %s", r)
	}
	h.MustMDN("network", "connect", "--gw-priority", "10", "ccc", "g")
	if r := h.Must("ip", "-n", "g", "route", "show", "default"); !strings.Contains(r, "via 172.20.0.1 dev eth2") {
		t.Errorf("the highest --gw-priority takes the default route: %s", r)
	}
	h.MustMDN("network", "disconnect", "aaa", "g")
	h.MustMDN("network", "connect", "aaa", "g")
	if r := h.Must("ip", "-n", "g", "-o", "link"); !strings.Contains(r, "eth1@") {
		t.Errorf("the lowest free ethN is reused: %s", r)
	}
}

func TestParallelRuns(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "par")
	var wg sync.WaitGroup
	errs := make(chan Result, 20)
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if r := h.MDN("run", "-d", "--net", "par", "--name", fmt.Sprintf("s%d", i)); r.Code != 0 {
				errs <- r
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for r := range errs {
		t.Errorf("parallel run failed:\n%s", r)
	}
	var insp []struct {
		Containers map[string]struct{ Name, IPv4Address string }
	}
	if err := json.Unmarshal([]byte(h.MustMDN("network", "inspect", "par")), &insp); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, c := range insp[0].Containers {
		if other, dup := seen[c.IPv4Address]; dup {
			t.Errorf("%s and %s share %s", c.Name, other, c.IPv4Address)
		}
		seen[c.IPv4Address] = c.Name
	}
	if len(seen) != 20 {
		t.Fatalf("want 20 sandboxes on the network, got %d", len(seen))
	}
	var ips []string
	for ip := range seen {
		ips = append(ips, strings.TrimSuffix(ip, "/16"))
	}
	sort.Strings(ips)
	for _, ip := range ips {
		if !h.Ping("s1", ip) {
			t.Errorf("s1 cannot reach %s (%s)", ip, seen[ip+"/16"])
		}
	}
	if n := len(strings.Fields(h.MustMDN("ps", "-q"))); n != 20 {
		t.Errorf("ps lists %d sandboxes", n)
	}
	if n := strings.Count(h.MustSh("ls /var/run/netns"), "\n"); n != 20 {
		t.Errorf("%d namespaces", n)
	}
}

func TestSandboxBadInput(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "--subnet", "10.5.0.0/24", "fixed")
	h.MustMDN("network", "create", "auto")
	h.MustMDN("run", "-d", "--net", "fixed", "--ip", "10.5.0.9", "--name", "one", "--", "sleep", "300")
	cases := []struct {
		want string
		args []string
	}{
		{"the sandbox name \"one\" is already in use", []string{"run", "-d", "--net", "fixed", "--name", "one"}},
		{"network nosuch not found", []string{"run", "-d", "--net", "nosuch", "--name", "x"}},
		{"No such sandbox: ghost", []string{"exec", "ghost", "--", "true"}},
		{"No such sandbox: ghost", []string{"rm", "ghost"}},
		{"No such sandbox: ghost", []string{"network", "connect", "auto", "ghost"}},
		{"network nosuch not found", []string{"network", "connect", "nosuch", "one"}},
		{"no configured subnet or ip-range contain the IP address 10.6.0.1", []string{"run", "-d", "--net", "fixed", "--ip", "10.6.0.1", "--name", "x"}},
		{"Address already in use", []string{"run", "-d", "--net", "fixed", "--ip", "10.5.0.9", "--name", "x"}},
		{"Address already in use", []string{"run", "-d", "--net", "fixed", "--ip", "10.5.0.1", "--name", "x"}},
		{"not an IPv4 address", []string{"run", "-d", "--net", "fixed", "--ip", "fd00::1", "--name", "x"}},
		{"supported only when connecting to networks with user configured subnets", []string{"run", "-d", "--net", "auto", "--ip", "172.18.0.50", "--name", "x"}},
		{"endpoint with name one already exists in network fixed", []string{"network", "connect", "fixed", "one"}},
		{"sandbox one is not connected to network auto", []string{"network", "disconnect", "auto", "one"}},
		{"cannot remove sandbox one: it has running processes", []string{"rm", "one"}},
		{"longer than 64 characters", []string{"run", "-d", "--name", strings.Repeat("x", 65)}},
		{"invalid sandbox name", []string{"run", "-d", "--name", "a;reboot"}},
		{"invalid sandbox name", []string{"run", "-d", "--name", "$(id)"}},
		{"invalid sandbox name", []string{"run", "-d", "--name", "../../etc"}},
		{"invalid sandbox name", []string{"run", "-d", "--name", "--dport"}},
		{"invalid sandbox name", []string{"run", "-d", "--name", "a b"}},
		{"invalid alias name", []string{"run", "-d", "--net", "auto", "--network-alias", "x y", "--name", "x"}},
		{"invalid hostname", []string{"run", "-d", "--hostname", "bad_host!", "--name", "x"}},
		{"invalid argument \"nocolon\" for --add-host", []string{"run", "-d", "--add-host", "nocolon", "--name", "x"}},
		{"not an IPv4 address", []string{"run", "-d", "--add-host", "a:999.1.1.1", "--name", "x"}},
		{"executable file not found", []string{"run", "--net", "auto", "--name", "x", "--", "/no/such/program"}},
		{"the host and none networks are chosen when a sandbox is created", []string{"network", "connect", "host", "one"}},
	}
	for _, c := range cases {
		h.Fails(c.want, c.args...)
	}
}

func TestLogsExecAndAutoRemove(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	// What the sandboxes see of the host's resolver: no loopback nameservers.
	h.MustSh("printf 'nameserver 127.0.0.53\\nnameserver 198.51.100.53\\nnameserver fd00::53\\nsearch example.test\\noptions ndots:2\\n' > /etc/resolv.conf")
	h.MustMDN("run", "-d", "--name", "talker", "--", "sh", "-c", "echo first line; echo second line >&2")
	h.MustMDN("exec", "-d", "talker", "--", "echo", "from exec")
	h.MustSh("sleep 0.3")
	logs := h.MustMDN("logs", "talker")
	hasLines(t, logs, "first line", "second line", "from exec")
	resolv := h.MustMDN("exec", "talker", "--", "cat", "/etc/resolv.conf")
	if !strings.Contains(resolv, "nameserver 198.51.100.53") || strings.Contains(resolv, "127.0.0.53") || strings.Contains(resolv, "fd00::53") ||
		!strings.Contains(resolv, "search example.test") || !strings.Contains(resolv, "options ndots:2") {
		t.Errorf("resolv.conf in the sandbox:\n%s", resolv)
	}
	// run -d --rm: removed once its program ends.
	h.MustMDN("run", "-d", "--rm", "--name", "brief", "--", "sleep", "0.2")
	h.MustSh("for i in $(seq 50); do " + bin + " ps -q | grep -q brief || exit 0; sleep 0.1; done; exit 1")
	if r := h.MDN("logs", "ghost"); r.Code == 0 || !strings.Contains(r.Stderr, "No such sandbox: ghost") {
		t.Errorf("logs of a missing sandbox:\n%s", r)
	}
}

// TestRmLeavesThePairsToTheKernel: rm takes a sandbox's host ends off their
// bridges and deletes its namespace, and the kernel deletes the pairs with
// it in the background. The moment rm returns, nothing of the sandbox is on
// a bridge or in the namespace list, its address serves the next sandbox,
// and soon after no interface of it is left.
func TestRmLeavesThePairsToTheKernel(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	before := h.Snapshot()
	h.MustMDN("network", "create", "n1")
	h.MustMDN("network", "create", "n2")
	h.MustMDN("run", "-d", "--net", "n1", "--name", "a")
	h.MustMDN("network", "connect", "n2", "a")
	h.MustMDN("run", "-d", "--net", "n1", "--name", "b")
	plan := h.MustMDN("--dry-run", "rm", "a")
	if n := strings.Count(plan, "nomaster down  # the kernel deletes the pair with namespace a"); n != 2 || strings.Contains(plan, "ip link del") {
		t.Errorf("rm should release both host ends and delete none itself:\n%s", plan)
	}
	// One shell: nothing runs between rm and the checks.
	out := h.MustSh(bin + ` rm a >/dev/null && ip -o link show master mdn-n1; ip -o link show master mdn-n2; echo netns: $(ls /var/run/netns)`)
	if strings.Contains(out, "sandbox a ") || !strings.Contains(out, "sandbox b eth0") || !strings.Contains(out, "netns: b\n") {
		t.Errorf("right after rm, a's ends must be off the bridges and its namespace gone:\n%s", out)
	}
	h.MustMDN("run", "-d", "--net", "n1", "--name", "c")
	if addr := h.MustMDN("exec", "c", "--", "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(addr, "172.18.0.2/16") {
		t.Errorf("c should take a's released address 172.18.0.2:\n%s", addr)
	}
	if !h.Ping("b", "c") {
		t.Errorf("b cannot ping c, which has the address a had")
	}
	// doctor right after rm does not mistake the ends on their way out for
	// a crash's leftovers...
	h.MustSh(bin + " rm c >/dev/null && " + bin + " doctor >/dev/null")
	// ...but an end that stays, because something holds its namespace
	// open, is reported.
	h.MustMDN("run", "-d", "--net", "n1", "--name", "held")
	doc := h.Sh("exec 3</var/run/netns/held; " + bin + " rm held >/dev/null && " + bin + " doctor")
	if doc.Code != 1 || !strings.Contains(doc.Stdout, "is not in the records") {
		t.Errorf("doctor with a released end held open:\n%s", doc)
	}
	h.MustMDN("rm", "b")
	h.MustMDN("network", "rm", "n1", "n2")
	h.SameAs(before, "after rm of every sandbox and network")
}
