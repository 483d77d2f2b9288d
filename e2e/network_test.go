package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

func hasLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		have[strings.TrimSpace(l)] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("missing line %q in:\n%s", l, text)
		}
	}
}

func TestNetworkCreateInspectRm(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	before := h.Snapshot()

	id := strings.TrimSpace(h.MustMDN("create", "test-network"))
	if len(id) != 64 {
		t.Fatalf("create printed %q, want a 64-hex ID", id)
	}
	br := "mdn-test-n-" + id[:4]

	link := h.Must("ip", "-d", "link", "show", br)
	for _, want := range []string{",UP", "nf_call_iptables 1", "alias minidocker-net network test-network", "02:42:ac:12:00:01"} {
		if !strings.Contains(link, want) {
			t.Errorf("bridge %s: want %q in\n%s", br, want, link)
		}
	}
	if addr := h.Must("ip", "-o", "-4", "addr", "show", br); !strings.Contains(addr, "172.18.0.1/16") {
		t.Errorf("bridge address: %s", addr)
	}
	if v := strings.TrimSpace(h.Must("cat", "/proc/sys/net/ipv4/ip_forward")); v != "1" {
		t.Errorf("ip_forward = %s", v)
	}
	if v := strings.TrimSpace(h.Must("cat", "/proc/sys/net/ipv4/conf/"+br+"/route_localnet")); v != "1" {
		t.Errorf("route_localnet on %s = %s", br, v)
	}
	if v := strings.TrimSpace(h.Must("cat", "/proc/sys/net/ipv4/conf/all/route_localnet")); v != "0" {
		t.Errorf("route_localnet must stay off host-wide, is %s", v)
	}
	if nftables() {
		hasLines(t, h.Ruleset(),
			"table ip minidocker-bridges {",
			"type filter hook forward priority filter; policy drop;", // ip_forward was off in the fresh host: Docker's behaviour
			"oifname vmap @filter-forward-in-jumps",
			"iifname vmap @filter-forward-out-jumps",
			"fib daddr type local jump nat-prerouting-and-output",
			"iifname vmap @nat-postrouting-out-jumps",
			"oifname vmap @nat-postrouting-in-jumps",
			"chain filter-forward-in__"+br+" {",
			`iifname "`+br+`" accept comment "ICC"`,
			`ip daddr . meta l4proto . th dport @published-ports accept comment "PUBLISHED PORT"`,
			`drop comment "UNPUBLISHED PORT DROP"`,
			`accept comment "OUTGOING"`,
			`oifname != "`+br+`" ip saddr 172.18.0.0/16 masquerade comment "MASQUERADE"`,
			`fib saddr type local masquerade comment "MASQUERADE FROM HOST"`,
			`iifname "`+br+`" ip daddr 127.0.0.0/8 drop`,
			`iifname != "`+br+`" ip daddr 172.18.0.0/16 ip daddr != 172.18.0.1 drop comment "DROP DIRECT ACCESS"`,
		)
		for _, m := range []string{"filter-forward-in-jumps", "filter-forward-out-jumps", "nat-postrouting-in-jumps", "nat-postrouting-out-jumps"} {
			if !strings.Contains(h.Must("nft", "list", "map", "ip", "minidocker-bridges", m), `"`+br+`" : jump `+strings.TrimSuffix(m, "-jumps")+"__"+br) {
				t.Errorf("verdict map %s has no element for %s", m, br)
			}
		}
		if strings.Contains(h.Must("iptables-save"), "MINIDOCKER") {
			t.Errorf("the nftables backend wrote iptables rules")
		}
	} else {
		hasLines(t, h.Must("iptables-save"),
			":FORWARD DROP [0:0]", // ip_forward was off in the fresh host: Docker's behaviour
			"-A FORWARD -j MINIDOCKER-USER",
			"-A FORWARD -j MINIDOCKER-FORWARD",
			"-A MINIDOCKER-FORWARD -j MINIDOCKER-CT",
			"-A MINIDOCKER-FORWARD -j MINIDOCKER-INTERNAL",
			"-A MINIDOCKER-FORWARD -j MINIDOCKER-ISOLATION-STAGE-1",
			"-A MINIDOCKER-FORWARD -j MINIDOCKER-BRIDGE",
			"-A MINIDOCKER-FORWARD -i "+br+" -j ACCEPT",
			"-A MINIDOCKER ! -i "+br+" -o "+br+" -j DROP",
			"-A MINIDOCKER-CT -o "+br+" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"-A MINIDOCKER-BRIDGE -o "+br+" -j MINIDOCKER",
			"-A MINIDOCKER-ISOLATION-STAGE-1 -i "+br+" ! -o "+br+" -j MINIDOCKER-ISOLATION-STAGE-2",
			"-A MINIDOCKER-ISOLATION-STAGE-2 -o "+br+" -j DROP",
			"-A PREROUTING -m addrtype --dst-type LOCAL -j MINIDOCKER",
			"-A OUTPUT -m addrtype --dst-type LOCAL -j MINIDOCKER",
			"-A POSTROUTING -j MINIDOCKER-POSTROUTING",
			"-A MINIDOCKER-POSTROUTING -s 172.18.0.0/16 ! -o "+br+" -j MASQUERADE",
			"-A MINIDOCKER-POSTROUTING -o "+br+" -m addrtype --src-type LOCAL -j MASQUERADE",
			"-A MINIDOCKER-PREROUTING -d 127.0.0.0/8 -i "+br+" -j DROP",
		)
	}

	ls := h.MustMDN("network", "ls")
	hasLines(t, ls, "NETWORK ID     NAME           DRIVER    SCOPE     SUBNET          BRIDGE")
	if !strings.Contains(ls, id[:12]+"   test-network   bridge    local     172.18.0.0/16   "+br) {
		t.Errorf("network ls:\n%s", ls)
	}
	var rows []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.MustMDN("network", "ls", "--format", "json")), "\n") {
		var row map[string]any
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatalf("ls --format json line %q: %v", l, err)
		}
		rows = append(rows, row)
	}
	// The default network is listed from the start, as on Docker.
	if len(rows) != 4 || rows[0]["Name"] != "bridge" || rows[3]["Name"] != "test-network" || rows[3]["Subnet"] != "172.18.0.0/16" {
		t.Errorf("ls --format json: %v", rows)
	}

	var inspect []struct {
		Name, Id, Driver, Scope string
		IPAM                    struct {
			Config []struct{ Subnet, Gateway string }
		}
		Internal        bool
		Containers      map[string]any
		Options, Labels map[string]string
	}
	if err := json.Unmarshal([]byte(h.MustMDN("network", "inspect", "test-network")), &inspect); err != nil {
		t.Fatal(err)
	}
	n := inspect[0]
	if n.Name != "test-network" || n.Id != id || n.Driver != "bridge" || n.Scope != "local" ||
		len(n.IPAM.Config) != 1 || n.IPAM.Config[0].Subnet != "172.18.0.0/16" || n.IPAM.Config[0].Gateway != "172.18.0.1" {
		t.Errorf("inspect: %+v", n)
	}

	h.Fails("network with name test-network already exists", "network", "create", "test-network")
	h.Fails("invalid pool request: Pool overlaps with other one on this address space", "network", "create", "--subnet", "172.18.5.0/24", "other")

	h.MustMDN("network", "rm", "test-network")
	h.SameAs(before, "after network rm")
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	before := h.Snapshot()
	out := h.MustMDN("--dry-run", "network", "create", "x")
	rules := []string{"iptables -t filter -N MINIDOCKER-FORWARD", "iptables -t nat -A MINIDOCKER-POSTROUTING -s 172.18.0.0/16 ! -o mdn-x -j MASQUERADE"}
	if nftables() {
		rules = []string{"nft -f - <<'EOF'", "add table ip minidocker-bridges",
			`add rule ip minidocker-bridges nat-postrouting-out__mdn-x oifname != "mdn-x" ip saddr 172.18.0.0/16 masquerade comment "MASQUERADE"`}
	}
	for _, want := range append([]string{"ip link add mdn-x", "ip addr add 172.18.0.1/16 dev mdn-x", "sysctl -w net.ipv4.ip_forward=1"}, rules...) {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run plan lacks %q:\n%s", want, out)
		}
	}
	h.SameAs(before, "after --dry-run")

	h.MustMDN("create", "x")
	before = h.Snapshot()
	out = h.MustMDN("--dry-run", "network", "rm", "x")
	rm := "iptables -t filter -D MINIDOCKER-FORWARD -i mdn-x -j ACCEPT"
	if nftables() {
		rm = "delete table ip minidocker-bridges"
	}
	if !strings.Contains(out, "ip link del mdn-x") || !strings.Contains(out, rm) {
		t.Errorf("dry-run rm plan:\n%s", out)
	}
	h.SameAs(before, "after --dry-run rm")
	verbose := h.MDN("--verbose", "network", "rm", "x")
	if verbose.Code != 0 || !strings.Contains(verbose.Stderr, "ip link del mdn-x") {
		t.Errorf("--verbose should print each step:\n%s", verbose)
	}
}

func TestNetworkBadInput(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("create", "taken")
	cases := []struct {
		want string
		args []string
	}{
		{"invalid subnet 172.20.0.1/16: it should be 172.20.0.0/16", []string{"network", "create", "--subnet", "172.20.0.1/16", "a"}},
		{"no matching subnet for gateway 10.0.0.1", []string{"network", "create", "--subnet", "172.20.0.0/16", "--gateway", "10.0.0.1", "a"}},
		{"given without --ipv6", []string{"network", "create", "--subnet", "fd00::/64", "a"}},
		{"not an IPv4 CIDR", []string{"network", "create", "--subnet", "banana", "a"}},
		{"too small", []string{"network", "create", "--subnet", "172.20.0.0/31", "a"}},
		{"unknown option", []string{"network", "create", "-o", "frobnicate=1", "a"}},
		{"expected true or false", []string{"network", "create", "-o", "icc=maybe", "a"}},
		{"an MTU between 68 and 65535", []string{"network", "create", "-o", "mtu=70000", "a"}},
		{"must start with \"mdn\"", []string{"network", "create", "-o", "com.docker.network.bridge.name=docker9", "a"}},
		{"invalid bridge name", []string{"network", "create", "-o", "name=mdn;reboot", "a"}},
		{"operation is not permitted on predefined bridge network", []string{"network", "create", "bridge"}},
		{"invalid network name", []string{"network", "create", "a;rm -rf /"}},
		{"invalid network name", []string{"network", "create", "--", "-j ACCEPT"}},
		{"invalid network name", []string{"network", "create", "../etc"}},
		{"longer than 64", []string{"network", "create", strings.Repeat("n", 65)}},
		{"driver \"nosuch\" is not supported", []string{"network", "create", "-d", "nosuch", "a"}},
		{"network create -d overlay: this host is in no cluster: give --cluster-store", []string{"network", "create", "-d", "overlay", "a"}},
		{"invalid cluster configuration. --cluster-advertise must be accompanied by --cluster-store configuration", []string{"--cluster-advertise", "10.1.1.1", "network", "ls"}},
		{"invalid --cluster-store \"consul://x:1\": only etcd://HOST:PORT", []string{"--cluster-store", "consul://x:1", "--cluster-advertise", "10.1.1.1", "network", "ls"}},
		{"invalid --cluster-advertise \"127.0.0.1\"", []string{"--cluster-store", "etcd://10.1.1.1:2379", "--cluster-advertise", "127.0.0.1", "network", "ls"}},
		{"network with name taken already exists", []string{"network", "create", "taken"}},
		{"network nosuch not found", []string{"network", "rm", "nosuch"}},
		{"host is a pre-defined network and cannot be removed", []string{"network", "rm", "host"}},
		{"--gateway and --ip-range need --subnet", []string{"network", "create", "--gateway", "172.30.0.1", "a"}},
	}
	for _, c := range cases {
		h.Fails(c.want, c.args...)
	}
	if r := h.MDN("network", "inspect", "nosuch"); r.Code == 0 || strings.TrimSpace(r.Stdout) != "[]" || !strings.Contains(r.Stderr, "network nosuch not found") {
		t.Errorf("inspect of a missing network should print [] and fail:\n%s", r)
	}
}

func TestNetworkOptions(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "-o", "icc=false", "-o", "masquerade=false", "-o", "mtu=1400",
		"-o", "com.docker.network.bridge.name=mdn-custom", "--label", "team=apples", "opts")
	h.MustMDN("network", "create", "--internal", "--subnet", "10.99.0.0/24", "--gateway", "10.99.0.254", "inside")
	if nftables() {
		rules := h.Ruleset()
		hasLines(t, rules,
			`iifname "mdn-custom" drop comment "ICC"`,
			`accept comment "OUTGOING"`,
			"chain filter-forward-in__mdn-inside {",
			`iifname != "mdn-inside" drop comment "INTERNAL NETWORK INGRESS"`,
			`accept comment "ICC"`,
			`oifname != "mdn-inside" drop comment "INTERNAL NETWORK EGRESS"`,
		)
		if strings.Contains(rules, "ip saddr 172.18.0.0/16 masquerade") {
			t.Errorf("masquerade=false still masquerades:\n%s", rules)
		}
		if strings.Contains(rules, "nat-postrouting-out__mdn-inside") || strings.Contains(rules, "10.99.0.0/24 ip daddr != 10.99.0.254 drop") {
			t.Errorf("an internal network gets no NAT and no published ports:\n%s", rules)
		}
	} else {
		rules := h.Must("iptables-save")
		hasLines(t, rules,
			"-A MINIDOCKER-FORWARD -i mdn-custom -o mdn-custom -j DROP",
			"-A MINIDOCKER-FORWARD -i mdn-custom ! -o mdn-custom -j ACCEPT",
			"-A MINIDOCKER-INTERNAL ! -s 10.99.0.0/24 -o mdn-inside -j DROP",
			"-A MINIDOCKER-INTERNAL ! -d 10.99.0.0/24 -i mdn-inside -j DROP",
			"-A MINIDOCKER-FORWARD -i mdn-inside -o mdn-inside -j ACCEPT",
		)
		if strings.Contains(rules, "-s 172.18.0.0/16 ! -o mdn-custom -j MASQUERADE") {
			t.Errorf("masquerade=false still masquerades:\n%s", rules)
		}
		if strings.Contains(rules, "mdn-inside -j MASQUERADE") || strings.Contains(rules, "-A MINIDOCKER-BRIDGE -o mdn-inside -j MINIDOCKER") {
			t.Errorf("an internal network gets no NAT and no published ports:\n%s", rules)
		}
	}
	if l := h.Must("ip", "link", "show", "mdn-custom"); !strings.Contains(l, "mtu 1400") {
		t.Errorf("mtu option: %s", l)
	}
	if a := h.Must("ip", "-o", "-4", "addr", "show", "mdn-inside"); !strings.Contains(a, "10.99.0.254/24") {
		t.Errorf("--gateway: %s", a)
	}
	var inspect []struct {
		Internal        bool
		Options, Labels map[string]string
	}
	if err := json.Unmarshal([]byte(h.MustMDN("network", "inspect", "opts", "inside")), &inspect); err != nil {
		t.Fatal(err)
	}
	if inspect[0].Labels["team"] != "apples" || inspect[0].Options["com.docker.network.bridge.enable_icc"] != "false" ||
		inspect[0].Options["com.docker.network.driver.mtu"] != "1400" || !inspect[1].Internal {
		t.Errorf("inspect options/labels: %+v", inspect)
	}
}

func TestIPAMFollowsDocker(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	// A prefix the host already routes is skipped, as Docker does.
	h.MustSh("ip link add other0 type bridge && ip addr add 172.20.0.1/16 dev other0 && ip link set other0 up")
	want := map[string]string{"n1": "172.18.0.0/16", "n2": "172.19.0.0/16", "n3": "172.21.0.0/16"}
	for _, n := range []string{"n1", "n2", "n3"} {
		h.MustMDN("create", n)
	}
	var inspect []struct {
		Name string
		IPAM struct{ Config []struct{ Subnet string } }
	}
	if err := json.Unmarshal([]byte(h.MustMDN("network", "inspect", "n1", "n2", "n3")), &inspect); err != nil {
		t.Fatal(err)
	}
	for _, n := range inspect {
		if got := n.IPAM.Config[0].Subnet; got != want[n.Name] {
			t.Errorf("%s got %s, want %s", n.Name, got, want[n.Name])
		}
	}
	// A released subnet is handed out again, lowest first.
	h.MustMDN("network", "rm", "n2")
	h.MustMDN("create", "n4")
	if !strings.Contains(h.MustMDN("network", "inspect", "n4"), "172.19.0.0/16") {
		t.Errorf("released 172.19.0.0/16 was not reused")
	}
	// prune removes networks without sandboxes.
	out := h.MustMDN("network", "prune")
	hasLines(t, out, "Deleted Networks:", "n1", "n3", "n4")
	if r := h.Ruleset(); strings.Contains(r, "MINIDOCKER") || strings.Contains(r, "minidocker") {
		t.Errorf("rules left after prune")
	}
}

// TestFirewallBackendChoice: the backend is the host's, recorded with
// its networks: asking for the other while they exist is an error that
// names them and changes nothing; once they are gone, the other applies.
func TestFirewallBackendChoice(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	first, other := "nftables", "iptables"
	if !nftables() {
		first, other = "iptables", "nftables"
	}
	h.MustMDN("--firewall-backend", first, "network", "create", "a")
	h.MustMDN("--firewall-backend", first, "network", "create", "b")
	h.Fails("the firewall backend is "+first+", recorded with networks a, b: remove them first", "--firewall-backend", other, "network", "create", "c")
	h.Fails(`invalid firewall backend "pf": use iptables or nftables`, "--firewall-backend", "pf", "network", "ls")
	// Another command goes on with the recorded one, and says so.
	if r := h.MDN("--firewall-backend", other, "run", "-d", "--net", "a", "--name", "s", "-p", "8080:80"); r.Code != 0 ||
		!strings.Contains(r.Stderr, "WARNING: --firewall-backend "+other+" is not this host's: its networks (a, b) use "+first) {
		t.Errorf("a command asking for the other backend:\n%s", r)
	}
	if strings.Contains(h.Must("iptables-save"), "MINIDOCKER") == (first == "nftables") ||
		strings.Contains(h.Must("nft", "list", "tables"), "minidocker-bridges") != (first == "nftables") {
		t.Errorf("the recorded backend %s was not the one used", first)
	}
	h.MustMDN("--firewall-backend", first, "rm", "-f", "s")
	h.MustMDN("--firewall-backend", first, "network", "rm", "a", "b")
	before := h.Snapshot()
	h.MustMDN("--firewall-backend", other, "network", "create", "c")
	if strings.Contains(h.Must("iptables-save"), "MINIDOCKER") != (other == "iptables") {
		t.Errorf("with no network left, %s should apply", other)
	}
	h.MustMDN("--firewall-backend", other, "network", "rm", "c")
	h.SameAs(before, "after the other backend's network came and went")
}
