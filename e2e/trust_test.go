package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minidocker-net/minidocker-net/hostns"
)

// long reports whether the long version of the random-kill test runs
// (MINIDOCKER_NET_LONG_TESTS=1); CI runs the short one.
func long() bool { return os.Getenv("MINIDOCKER_NET_LONG_TESTS") == "1" }

// mustBeHealthy fails the test unless doctor finds nothing to fix.
// reboot does to a host what a reboot does: the kernel loses namespaces
// (and their processes), our links, the ruleset and ip_forward; disks
// keep network definitions and /etc/netns; /run is kept too, as on a host
// whose /run is not a tmpfs (this project's machines): only the boot id
// changes.
func reboot(h *Host) {
	h.t.Helper()
	h.MustSh(`for ns in $(ls /var/run/netns); do ip netns pids $ns | xargs -r kill -9; umount /var/run/netns/$ns; rm /var/run/netns/$ns; done
for l in $(ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | grep ^mdn); do ip link del $l 2>/dev/null; done
nft flush ruleset && sysctl -qw net.ipv4.ip_forward=0
echo an-earlier-boot > ` + hostns.StateDir + `/run/boot_id`)
}

func mustBeHealthy(t *testing.T, h *Host, when string) {
	t.Helper()
	if r := h.MDN("doctor"); r.Code != 0 {
		t.Fatalf("doctor %s:\n%s", when, r)
	}
}

// TestRandomKills kills commands with SIGKILL at random moments; after
// each, doctor says precisely what is left (nothing, or the interrupted
// command), and doctor --fix restores a consistent host.
func TestRandomKills(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "k1")
	h.MustMDN("network", "create", "k2")
	rounds := 25
	if long() {
		rounds = 300
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	t.Logf("seed-free random rounds: %d", rounds)
	interrupted := 0
	for i := 0; i < rounds; i++ {
		name := fmt.Sprintf("s%d", rng.Intn(4))
		var cmd []string
		switch rng.Intn(5) {
		case 0:
			cmd = []string{"run", "-d", "--net", "k1", "--name", name, "-p", fmt.Sprintf("%d:80", 20000+rng.Intn(4))}
		case 1:
			cmd = []string{"rm", "-f", name}
		case 2:
			cmd = []string{"network", "connect", "k2", name}
		case 3:
			cmd = []string{"network", "disconnect", "k2", name}
		case 4:
			cmd = []string{"expose", name, fmt.Sprint(21000 + rng.Intn(4))}
		}
		delay := fmt.Sprintf("0.%03d", rng.Intn(15))
		h.Sh(fmt.Sprintf("%s %s >/dev/null 2>&1 & p=$!; sleep %s; kill -9 $p 2>/dev/null; wait $p", bin, strings.Join(cmd, " "), delay))
		doc := h.MDN("doctor")
		if doc.Code != 0 {
			if !strings.Contains(doc.Stdout, "was interrupted half-way") {
				t.Fatalf("round %d (%v killed after %ss): doctor finds drift that is not an interrupted command:\n%s", i, cmd, delay, doc)
			}
			interrupted++
			h.MustMDN("doctor", "--fix")
		}
		mustBeHealthy(t, h, fmt.Sprintf("after round %d (%v)", i, cmd))
	}
	t.Logf("%d of %d kills interrupted a command half-way; every one was rolled back", interrupted, rounds)
	// What survives works.
	var names []string
	for _, n := range strings.Fields(h.MustMDN("ps", "-q")) {
		names = append(names, n)
	}
	for _, n := range names {
		var insp []struct{ NetworkSettings struct{ IPAddress string } }
		if err := json.Unmarshal([]byte(h.MustMDN("inspect", n)), &insp); err != nil {
			t.Fatal(err)
		}
		if ip := insp[0].NetworkSettings.IPAddress; ip != "" && !h.Ping("", ip) {
			t.Errorf("surviving sandbox %s (%s) does not answer", n, ip)
		}
	}
}

func TestRestoreAfterRebootAndFirewallReload(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	lesson(t, h)
	h.MustMDN("run", "-d", "--net", "test-network", "--name", "web", "-p", "8080:80")
	h.Serve("web", "tcp", 80)
	rules := func() []string {
		var out []string
		if nftables() {
			out = strings.Split(h.Ruleset(), "\n")
			sort.Strings(out) // chains made again come in another order
			return out
		}
		for _, l := range strings.Split(h.Must("iptables-save"), "\n") {
			if strings.HasPrefix(l, "-A") || strings.HasPrefix(l, ":") {
				out = append(out, strings.Split(l, " [")[0])
			}
		}
		sort.Strings(out)
		return out
	}
	before := rules()

	// A firewall reload: every chain flushed, our chains left empty.
	reload := "iptables -F && iptables -t nat -F && iptables -t raw -F && iptables -P FORWARD ACCEPT"
	if nftables() {
		reload = "nft flush ruleset" // what 'systemctl restart nftables' does first
	}
	h.MustSh(reload)
	if _, ok := h.Reach("", "tcp", "127.0.0.1:8080"); ok {
		t.Fatalf("the published port should be gone with the rules")
	}
	if r := h.MDN("doctor"); r.Code != 1 || !strings.Contains(r.Stdout, "rule missing") {
		t.Errorf("doctor after a flush:\n%s", r)
	}
	h.MustMDN("restore")
	if got := rules(); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Errorf("restore after a flush:\n got %v\nwant %v", got, before)
	}
	if _, ok := h.Reach("", "tcp", "127.0.0.1:8080"); !ok {
		t.Errorf("the published port does not answer after restore")
	}
	mustBeHealthy(t, h, "after restore")

	// A reboot: the kernel loses everything, disks keep network
	// definitions and /etc/netns. /run is kept too, as on a host whose /run
	// is not a tmpfs (this test's machine): only the boot id changes.
	reboot(h)
	if ls := h.MustMDN("network", "ls"); !strings.Contains(ls, "test-network") || !strings.Contains(ls, "applesonly") {
		t.Fatalf("network definitions must survive a reboot:\n%s", ls)
	}
	if ps := strings.TrimSpace(h.MustMDN("ps", "-q")); ps != "" {
		t.Errorf("sandboxes do not survive a reboot: %s", ps)
	}
	if r := h.MDN("doctor"); r.Code != 1 || !strings.Contains(r.Stdout, "belongs to no sandbox") || !strings.Contains(r.Stdout, "bridge") {
		t.Errorf("doctor after a reboot:\n%s", r)
	}
	h.MustMDN("doctor", "--fix")
	mustBeHealthy(t, h, "after doctor --fix following a reboot")
	// Allocations did not leak across the reboot: the first sandbox gets .2 again.
	h.MustMDN("run", "-d", "--net", "test-network", "--name", "again")
	if got := h.Resolves("again", "again"); got != "172.18.0.2" {
		t.Errorf("first sandbox after a reboot got %s, want 172.18.0.2", got)
	}
	h.MustMDN("run", "-d", "--net", "test-network", "--name", "peer")
	if !h.Ping("again", "peer") {
		t.Errorf("sandboxes on a restored network do not talk")
	}
}

func TestResetWithoutRecords(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	// Things that are not ours, and must stay.
	h.MustSh(`ip link add br-foreign type bridge && ip netns add foreign &&
iptables -N DOCKER-USER && iptables -A FORWARD -i br-foreign -j ACCEPT && iptables -t nat -A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE &&
sysctl -qw net.ipv4.ip_forward=1`)
	before := h.Snapshot()
	lesson(t, h)
	h.MustMDN("run", "-d", "--name", "echo", "-p", "45678:45678", "--", "sleep", "600")
	h.MustMDN("network", "connect", "bridge", "red-apple")
	// The records vanish.
	h.MustSh("rm -rf " + hostns.StateDir)
	out := h.MustMDN("reset")
	if !strings.Contains(out, "removed everything") {
		t.Errorf("reset: %s", out)
	}
	h.SameAs(before, "after reset without records")
	if r := h.Run("pgrep", "-f", "sleep 600"); r.Code == 0 {
		t.Errorf("reset left a sandbox's process: %s", r.Stdout)
	}
}

// TestResetLeavesNoDirectories: after reset, not even the state
// directories, the lock or the namespace directory the first command made
// are left; a namespace directory someone else uses stays.
func TestResetLeavesNoDirectories(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "s")
	h.MustMDN("reset")
	left := h.MustSh("ls -A " + hostns.StateDir + "; ls -d /var/run/netns 2>/dev/null; grep -c ' /run/netns ' /proc/self/mountinfo || true")
	if strings.TrimSpace(left) != "0" {
		t.Errorf("left after reset (state directory entries, /var/run/netns, its mounts):\n%s", left)
	}
	// Commands work again from nothing, and a foreign namespace keeps the
	// directory it lives in.
	h.MustMDN("network", "create", "n")
	h.MustSh("ip netns add foreign")
	h.MustMDN("reset")
	if got := h.MustSh("ls /var/run/netns"); strings.TrimSpace(got) != "foreign" {
		t.Errorf("reset should leave a foreign namespace and its directory: %q", got)
	}
	h.MustSh("ip netns del foreign")
}

func TestCorruptRecordsAreReported(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "s")
	file := hostns.StateDir + "/run/sandboxes/s.json"
	h.MustSh("head -c 40 " + file + " > /tmp/s.json && cp /tmp/s.json " + file)
	corrupt := h.Must("cat", file)
	before := h.Snapshot()
	for _, args := range [][]string{{"ps"}, {"run", "-d", "--net", "n", "--name", "t"}, {"network", "rm", "n"}, {"rm", "-f", "s"}} {
		r := h.MDN(args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "state file "+file+" is corrupt") || !strings.Contains(r.Stderr, "left untouched") {
			t.Errorf("%v with a corrupt record:\n%s", args, r)
		}
	}
	h.SameAs(before, "after commands refused over a corrupt record")
	if got := h.Must("cat", file); got != corrupt {
		t.Errorf("the corrupt file was changed")
	}
	if r := h.MDN("doctor"); r.Code != 1 || !strings.Contains(r.Stdout, "is corrupt") {
		t.Errorf("doctor with a corrupt record:\n%s", r)
	}
}

// TestConcurrentMixedCommands runs 50 commands at once against shared
// networks: no duplicate address or port, no lost record, nothing leaked,
// and every surviving sandbox answers.
func TestConcurrentMixedCommands(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "c1")
	h.MustMDN("network", "create", "c2")
	for i := 0; i < 10; i++ {
		h.MustMDN("run", "-d", "--net", "c1", "--name", fmt.Sprintf("p%d", i))
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := fmt.Sprintf("p%d", i%10)
			switch i % 4 {
			case 0:
				h.MDN("run", "-d", "--net", "c1", "--name", fmt.Sprintf("c%d", i), "-p", fmt.Sprint(40000+i%7))
			case 1:
				h.MDN("rm", "-f", p)
			case 2:
				h.MDN("network", "connect", "c2", p)
			case 3:
				h.MDN("expose", p, fmt.Sprint(41000+i%5))
			}
		}(i)
	}
	wg.Wait()
	mustBeHealthy(t, h, "after 50 concurrent commands")
	type ep struct{ IPAddress string }
	var all []struct {
		Name            string
		NetworkSettings struct {
			Networks map[string]ep
			Ports    map[string][]struct{ HostIp, HostPort string }
		}
	}
	names := strings.Fields(h.MustMDN("ps", "-q"))
	if err := json.Unmarshal([]byte(h.MustMDN(append([]string{"inspect"}, names...)...)), &all); err != nil {
		t.Fatal(err)
	}
	ips, ports := map[string]string{}, map[string]string{}
	for _, sb := range all {
		for net, e := range sb.NetworkSettings.Networks {
			key := net + " " + e.IPAddress
			if other, dup := ips[key]; dup {
				t.Errorf("%s and %s share %s", sb.Name, other, key)
			}
			ips[key] = sb.Name
			if !h.Ping("", e.IPAddress) {
				t.Errorf("%s (%s) does not answer", sb.Name, e.IPAddress)
			}
		}
		for port, bs := range sb.NetworkSettings.Ports {
			for _, b := range bs {
				key := b.HostIp + ":" + b.HostPort + "/" + strings.Split(port, "/")[1]
				if other, dup := ports[key]; dup {
					t.Errorf("%s and %s both hold %s", sb.Name, other, key)
				}
				ports[key] = sb.Name
			}
		}
	}
	if n := strings.Count(h.MustSh("ls /var/run/netns"), "\n"); n != len(names) {
		t.Errorf("%d namespaces for %d sandboxes", n, len(names))
	}
	t.Logf("%d sandboxes survive, %d addresses, %d published ports", len(names), len(ips), len(ports))
}

// TestScale builds many sandboxes on one network and 1000 published ports,
// then tears it all down to the exact previous host.
func TestScale(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	n := 250 // the embedded DNS's promise: flat run -d and answers at 250 (about 15 s)
	before := h.Snapshot()
	h.MustMDN("network", "create", "big")
	start := time.Now()
	var first, last time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		h.MustMDN("run", "-d", "--net", "big", "--name", fmt.Sprintf("s%03d", i))
		d := time.Since(t0)
		if i < 10 {
			first += d
		}
		if i >= n-10 {
			last += d
		}
	}
	t.Logf("%d sandboxes in %v; run -d took %v on average for the first 10, %v for the last 10", n, time.Since(start), first/10, last/10)
	var specs []string
	for p := 30000; p < 31000; p++ {
		specs = append(specs, fmt.Sprint(p))
	}
	h.MustMDN(append([]string{"expose", "s000"}, specs...)...)
	if !h.Ping(fmt.Sprintf("s%03d", n-1), "s000") {
		t.Errorf("the last sandbox cannot reach the first")
	}
	// The embedded DNS answers across the whole network, both ways.
	firstIP := h.MustMDN("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "s000")
	lastIP := h.MustMDN("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", fmt.Sprintf("s%03d", n-1))
	if got := dig(h, fmt.Sprintf("s%03d", n-1), "s000"); got != strings.TrimSpace(firstIP) {
		t.Errorf("the last sandbox resolves the first as %q, want %s", got, firstIP)
	}
	if got := dig(h, "s000", fmt.Sprintf("s%03d.big", n-1)); got != strings.TrimSpace(lastIP) {
		t.Errorf("the first sandbox resolves the last as %q, want %s", got, lastIP)
	}
	mustBeHealthy(t, h, fmt.Sprintf("with %d sandboxes and 1000 ports", n))
	h.MustMDN(append([]string{"unexpose", "s000"}, specs...)...)
	for i := 0; i < n; i++ {
		h.MustMDN("rm", "-f", fmt.Sprintf("s%03d", i))
	}
	h.MustMDN("network", "rm", "big")
	h.SameAs(before, "after tearing down %d sandboxes", n)
}

func TestHostileCommandLines(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "n")
	h.MustMDN("run", "-d", "--net", "n", "--name", "s")
	for _, args := range [][]string{
		{"run", "-d", "--name", "$(reboot)"},
		{"run", "-d", "--name", "`id`"},
		{"run", "-d", "--name", "a;rm -rf /"},
		{"run", "-d", "--name", "a && true"},
		{"run", "-d", "--name", "x|y"},
		{"run", "-d", "--name", "line\nbreak"},
		{"run", "-d", "--name", "--", "-j"},
		{"run", "-d", "--name", "../../etc/passwd"},
		{"run", "-d", "--name", "/etc/shadow"},
		{"run", "-d", "--name", "x", "--net", "n;iptables -F"},
		{"run", "-d", "--name", "x", "--net", "n", "--network-alias", "-j ACCEPT"},
		{"run", "-d", "--name", "x", "--hostname", "$(id)"},
		{"run", "-d", "--name", "x", "--add-host", "a:1.2.3.4;reboot"},
		{"run", "-d", "--name", "x", "--add-host", "a:::1"},
		{"run", "-d", "--name", "x", "--gw-priority", "99999999999999999999"},
		{"run", "-d", "--name", "x", "-p", "99999999999:80"},
		{"run", "-d", "--name", "x", "-p", "80:80/tcp -j DROP"},
		{"run", "-d", "--name", "x", "-p", ""},
		{"run", "-d", "--name", "x", "--net", "n", "--ip", "::1"},
		{"run", "-d", "--name", "x", "--net", "n", "--ip", "172.18.0.300"},
		{"network", "create", "--subnet", "::/0", "v6"},
		{"network", "create", "--subnet", "10.0.0.0/8", "--gateway", "fe80::1", "v6"},
		{"network", "create", "--subnet", "10.0.0.0/99999999999", "big"},
		{"network", "create", "-o", "mtu=999999999999999", "big"},
		{"network", "create", "-o", "name=mdn-$(id)", "x"},
		{"network", "create", "-o", "name=mdn x", "x"},
		{"network", "create", "--label", "=", "x"},
		{"network", "create", ""},
		{"network", "create", strings.Repeat("n", 5000)},
		{"network", "connect", "n", "s;reboot"},
		{"expose", "s", "1-65535:1-65535/udp; reboot"},
		{"trace", "s", "host:1;id"},
		{"exec", "../s", "--", "true"},
	} {
		before := h.Snapshot()
		r := h.MDN(args...)
		if r.Code == 0 {
			t.Errorf("%q was accepted:\n%s", args, r)
		}
		if strings.Contains(r.Stderr, "panic") || strings.TrimSpace(r.Stderr) == "" {
			t.Errorf("%q: no clear error:\n%s", args, r)
		}
		h.SameAs(before, "after %q", args)
	}
}

// TestCoexistsWithDockerRules loads the ruleset of a real Docker host (the
// lesson on Docker 20.10, FORWARD policy DROP) and runs minidocker-net's
// lesson beside it: Docker's rules stay exactly as they were, ours work,
// and our teardown leaves Docker's ruleset byte-identical.
func TestCoexistsWithDockerRules(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	docker, err := os.ReadFile("testdata/docker-20.10-seed.iptables-save")
	if err != nil {
		t.Fatal(err)
	}
	h.Must("sysctl", "-qw", "net.ipv4.ip_forward=1")
	h.RunIn(string(docker), "iptables-restore")
	h.MustSh("ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && ip link set docker0 up")
	dockerOnly := h.Snapshot()
	ours := func(l string) bool { return strings.Contains(l, "MINIDOCKER") || strings.Contains(l, "mdn") }
	dockerLines := func() []string {
		var out []string
		for _, l := range strings.Split(h.Must("iptables-save"), "\n") {
			// Docker's rules, its chains and the FORWARD policy it set.
			if (strings.HasPrefix(l, "-A ") || strings.HasPrefix(l, ":DOCKER") || strings.HasPrefix(l, ":FORWARD")) && !ours(l) {
				out = append(out, strings.Split(l, " [")[0])
			}
		}
		return out
	}
	wantDocker := dockerLines()

	lesson(t, h)
	// 172.17.0.0/16 is docker0's: our default network takes the next pool.
	h.MustMDN("run", "-d", "--name", "echo", "-p", "45680:7000")
	h.Serve("echo", "tcp", 7000)
	h.Serve("apple-server", "tcp", 7000)
	if got := strings.Join(dockerLines(), "\n"); got != strings.Join(wantDocker, "\n") {
		t.Errorf("Docker's rules changed:\n%s\nwant:\n%s", got, strings.Join(wantDocker, "\n"))
	}
	if _, ok := h.Reach("red-apple", "tcp", "apple-server:7000"); !ok {
		t.Errorf("our sandboxes do not talk beside Docker's FORWARD DROP")
	}
	if _, ok := h.Reach("", "tcp", "127.0.0.1:45680"); !ok {
		t.Errorf("our published port does not answer beside Docker's rules")
	}
	if h.Ping("red-apple", "172.18.0.3") {
		t.Errorf("isolation broke beside Docker")
	}
	for _, sb := range []string{"apple-server", "orange-server", "red-apple", "echo"} {
		h.MustMDN("rm", "-f", sb)
	}
	h.MustMDN("network", "rm", "test-network", "applesonly")
	h.MustMDN("reset")
	h.SameAs(dockerOnly, "after our teardown beside Docker")
}

func TestDoctorChecksTheHost(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "--subnet", "10.20.0.0/16", "n")
	mustBeHealthy(t, h, "on a fresh network")
	// A route that steals part of the network's subnet.
	h.MustSh("ip link add other0 type bridge && ip link set other0 up && ip route add 10.20.5.0/24 dev other0")
	r := h.MDN("doctor")
	if r.Code != 1 || !strings.Contains(r.Stdout, "the route 10.20.5.0/24 dev other0 overlaps network n") {
		t.Errorf("doctor should report the overlapping route:\n%s", r)
	}
	h.MustSh("ip route del 10.20.5.0/24 dev other0")
	// Rules in the other iptables backend.
	if h.Run("sh", "-c", "command -v iptables-legacy").Code == 0 {
		h.MustSh("iptables-legacy -A FORWARD -j ACCEPT")
		r = h.MDN("doctor")
		if r.Code != 1 || !strings.Contains(r.Stdout, "rules also exist in the other iptables backend") {
			t.Errorf("doctor should report rules in the legacy backend:\n%s", r)
		}
		h.MustSh("iptables-legacy -D FORWARD -j ACCEPT")
	}
	if !strings.Contains(h.MustMDN("doctor"), "the FORWARD policy is DROP: set by minidocker-net") {
		t.Errorf("doctor should explain the FORWARD policy")
	}
}
