package e2e

import (
	"strings"
	"testing"
)

// TestOptionsAfterNames: options follow positional arguments, as Docker's
// CLI takes them.
func TestOptionsAfterNames(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "hab", "--subnet", "10.77.0.0/24")
	if got := strings.TrimSpace(h.MustMDN("network", "inspect", "hab", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}")); got != "10.77.0.0/24" {
		t.Errorf("network create NAME --subnet: subnet %q", got)
	}
	h.MustMDN("run", "-d", "--net", "hab", "--name", "x", "--", "sleep", "310")
	h.MustMDN("rm", "x", "-f")
	if h.Running("sleep 310") || strings.Contains(h.MustMDN("ps", "-q"), "x") {
		t.Errorf("rm NAME -f did not remove the running sandbox")
	}
	h.Fails("No such sandbox: -f", "rm", "--", "-f")
}

// TestTemplatesAndFilters: --format templates and --filter on network ls
// and ps, inspect -f, logs -f.
func TestTemplatesAndFilters(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "--label", "team=apples", "apples")
	h.MustMDN("network", "create", "oranges")
	h.MustMDN("run", "-d", "--net", "apples", "--name", "a", "--label", "tier=web", "--", "sleep", "311")
	h.MustMDN("run", "-d", "--net", "oranges", "--name", "o")
	if got := h.MustMDN("network", "ls", "--format", "{{.Name}}"); got != "apples\nbridge\nhost\nnone\noranges\n" {
		t.Errorf("network ls --format {{.Name}}:\n%s", got)
	}
	if got := h.MustMDN("network", "ls", "--filter", "label=team=apples", "--format", "{{.Name}} {{.Driver}} {{.Label \"team\"}}"); got != "apples bridge apples\n" {
		t.Errorf("network ls --filter label:\n%s", got)
	}
	if got := h.MustMDN("network", "ls", "-f", "name=ran", "-f", "driver=null", "--format", "{{.Name}}"); got != "" {
		t.Errorf("filters of different keys must all match:\n%s", got)
	}
	if got := h.MustMDN("network", "ls", "-f", "type=builtin", "--format", "{{.Name}}"); got != "bridge\nhost\nnone\n" {
		t.Errorf("network ls -f type=builtin:\n%s", got)
	}
	if got := h.MustMDN("network", "ls", "--format", "table {{.Name}}\t{{.Driver}}", "-f", "name=apples"); !strings.HasPrefix(got, "NAME") || !strings.Contains(got, "apples") {
		t.Errorf("table format:\n%s", got)
	}
	if got := h.MustMDN("ps", "--format", "{{.Names}} {{.State}}"); got != "a running\no created\n" {
		t.Errorf("ps --format:\n%s", got)
	}
	for filter, want := range map[string]string{"network=apples": "a\n", "status=created": "o\n", "label=tier=web": "a\n", "name=^o$": "o\n", "status=exited": ""} {
		if got := h.MustMDN("ps", "--filter", filter, "--format", "{{.Names}}"); got != want {
			t.Errorf("ps --filter %s: %q, want %q", filter, got, want)
		}
	}
	if got := strings.TrimSpace(h.MustMDN("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "a")); got != "172.18.0.2" {
		t.Errorf("inspect -f: %q", got)
	}
	if got := strings.TrimSpace(h.MustMDN("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "o")); got != "172.19.0.2" {
		t.Errorf("inspect -f range: %q", got)
	}
	h.Fails("template parsing error", "ps", "--format", "{{.Names")
	h.Fails("invalid filter 'colour'", "ps", "--filter", "colour=red")
	// logs -f follows until the program ends.
	h.MustMDN("run", "-d", "--name", "talk", "--", "sh", "-c", "echo one; sleep 0.5; echo two")
	if got := h.MustMDN("logs", "-f", "talk"); got != "one\ntwo\n" {
		t.Errorf("logs -f: %q", got)
	}
}

// TestIDsWhereNamesGo: IDs and unique ID prefixes are taken wherever a
// name is.
func TestIDsWhereNamesGo(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	nid := strings.TrimSpace(h.MustMDN("network", "create", "byid"))
	sid := strings.TrimSpace(h.MustMDN("run", "-d", "--net", nid[:6], "--name", "s"))
	if len(sid) != 64 {
		t.Fatalf("run -d printed %q", sid)
	}
	h.MustMDN("exec", sid[:5], "--", "true")
	if got := strings.TrimSpace(h.MustMDN("inspect", "-f", "{{.Name}}", sid[:7])); got != "/s" {
		t.Errorf("inspect by prefix: %q", got)
	}
	h.MustMDN("network", "create", "other")
	h.MustMDN("network", "connect", "other", sid)
	h.MustMDN("network", "disconnect", "other", sid[:8])
	h.MustMDN("rm", "-f", sid[:9])
	h.MustMDN("network", "rm", nid[:10])
	if ls := h.MustMDN("network", "ls"); strings.Contains(ls, "byid") {
		t.Errorf("network rm by ID prefix:\n%s", ls)
	}
	h.Fails("No such sandbox: 0000", "exec", "0000", "--", "true")
}

// TestRunFlagsDockerUsersType: -e, --expose with -P, --mac-address, and
// -ti without a terminal.
func TestRunFlagsDockerUsersType(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	out := h.MustMDN("run", "--rm", "-e", "GREETING=hello there", "--name", "env", "--", "sh", "-c", `echo "$GREETING"`)
	if out != "hello there\n" {
		t.Errorf("run -e: %q", out)
	}
	h.MustMDN("run", "-d", "--name", "pub", "--expose", "80", "--expose", "53/udp", "-P", "-e", "X=1")
	ports := h.MustMDN("port", "pub")
	if !strings.Contains(ports, "80/tcp -> 0.0.0.0:32768") || !strings.Contains(ports, "53/udp -> 0.0.0.0:32768") {
		t.Errorf("-P publishes every exposed port on an ephemeral one:\n%s", ports)
	}
	if got := strings.TrimSpace(h.MustMDN("exec", "pub", "--", "sh", "-c", "echo $X")); got != "1" {
		t.Errorf("exec sees the sandbox's environment: %q", got)
	}
	h.MustMDN("run", "-d", "--name", "mac", "--mac-address", "02:42:de:ad:be:ef")
	if l := h.Must("ip", "-n", "mac", "link", "show", "eth0"); !strings.Contains(l, "02:42:de:ad:be:ef") {
		t.Errorf("--mac-address: %s", l)
	}
	h.Fails("is not a valid mac address", "run", "-d", "--name", "m2", "--mac-address", "nope")
	before := h.Snapshot()
	r := h.MDN("run", "-ti", "--name", "tty", "--", "true")
	if r.Code != 1 || strings.TrimSpace(r.Stderr) != "Error: the input device is not a TTY" {
		t.Errorf("-ti without a terminal:\n%s", r)
	}
	h.SameAs(before, "after -ti without a terminal")
}

// TestPortsAsDocker: port with a port prints the host side only,
// ephemeral ports go round-robin, -p on an internal network publishes
// nothing.
func TestPortsAsDocker(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("run", "-d", "--name", "p", "-p", "8000:80")
	if got := h.MustMDN("port", "p", "80"); got != "0.0.0.0:8000\n" {
		t.Errorf("port p 80: %q", got)
	}
	h.MustMDN("run", "-d", "--name", "e1", "-p", "80")
	h.MustMDN("rm", "-f", "e1")
	h.MustMDN("run", "-d", "--name", "e2", "-p", "80")
	if got := h.MustMDN("port", "e2", "80"); got != "0.0.0.0:32769\n" {
		t.Errorf("the next ephemeral port after 32768 is 32769, not the one just released: %q", got)
	}
	h.MustMDN("network", "create", "--internal", "closed")
	h.MustMDN("run", "-d", "--net", "closed", "--name", "in", "-p", "8081:80")
	if got := h.MustMDN("port", "in"); got != "" {
		t.Errorf("-p on an internal network publishes nothing: %q", got)
	}
	if strings.Contains(h.Ruleset(), "8081") {
		t.Errorf("rules for a port published on an internal network")
	}
}

// TestNetworkNamesDockerAccepts: names with spaces, underscores and other
// scripts, with bridge names derived safely.
func TestNetworkNamesDockerAccepts(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	before := h.Snapshot()
	for name, bridge := range map[string]string{"_net": "mdn-net", "my net": "mdn-my-net", "réseau": "mdn-rseau"} {
		h.MustMDN("network", "create", name)
		if got := strings.TrimSpace(h.MustMDN("network", "inspect", "-f", "{{.MinidockerNet.Bridge}}", name)); got != bridge {
			t.Errorf("network %q: bridge %q, want %q", name, got, bridge)
		}
	}
	h.MustMDN("run", "-d", "--net", "my net", "--name", "s")
	if !strings.Contains(h.MustMDN("network", "ls"), "my net") {
		t.Errorf("ls lacks 'my net'")
	}
	h.MustMDN("rm", "-f", "s")
	h.MustMDN("network", "rm", "_net", "my net", "réseau")
	h.SameAs(before, "after removing the networks")
}

// TestDefaultNetworkComesAndGoes: bridge is listed from the start; its
// bridge and rules come with its first sandbox and go with its last.
func TestDefaultNetworkComesAndGoes(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	before := h.Snapshot()
	if ls := h.MustMDN("network", "ls", "--format", "{{.Name}} {{.Driver}}"); !strings.Contains(ls, "bridge bridge") {
		t.Errorf("network ls on a fresh host:\n%s", ls)
	}
	if got := strings.TrimSpace(h.MustMDN("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "bridge")); got != "172.17.0.0/16" {
		t.Errorf("network inspect bridge: %q", got)
	}
	if got := strings.TrimSpace(h.MustMDN("inspect", "-f", "{{.Name}} {{.Driver}}", "bridge")); got != "bridge bridge" {
		t.Errorf("inspect bridge: %q", got)
	}
	h.MustMDN("run", "-d", "--name", "d")
	if h.Run("ip", "link", "show", "mdn0").Code != 0 {
		t.Errorf("the default bridge comes with its first sandbox")
	}
	h.MustMDN("rm", "-f", "d")
	h.SameAs(before, "after the default network's last sandbox went")
	// --add-host NAME:host-gateway is the default bridge's gateway, as on Docker.
	h.MustMDN("network", "create", "u")
	h.MustMDN("run", "-d", "--net", "u", "--name", "g", "--add-host", "gw:host-gateway", "--hostname", "box.example.com")
	if got := h.Resolves("g", "gw"); got != "172.17.0.1" {
		t.Errorf("host-gateway is %q, want 172.17.0.1", got)
	}
	if !h.Ping("g", "gw") {
		t.Errorf("the host-gateway address does not answer")
	}
	if hosts := h.MustMDN("exec", "g", "--", "cat", "/etc/hosts"); !strings.Contains(hosts, "box.example.com box ") {
		t.Errorf("--hostname a.b: hosts file\n%s", hosts)
	}
	h.MustMDN("rm", "-f", "g")
	if h.Run("ip", "link", "show", "mdn0").Code == 0 {
		t.Errorf("the default bridge stayed after its last user went")
	}
}

// TestDisconnectLastNetworkAndIPRange: a running sandbox may leave its
// last network; --ip-range without --gateway as Docker chooses.
func TestDisconnectLastNetworkAndIPRange(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.MustMDN("network", "create", "--subnet", "172.30.0.0/16", "--ip-range", "172.30.5.0/24", "ranged")
	if got := strings.TrimSpace(h.MustMDN("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "ranged")); got != "172.30.5.0" {
		t.Errorf("gateway %q, want 172.30.5.0 (Docker draws it from the range)", got)
	}
	h.MustMDN("run", "-d", "--net", "ranged", "--name", "r", "--", "sleep", "312")
	if got := strings.TrimSpace(h.MustMDN("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "r")); got != "172.30.5.1" {
		t.Errorf("first address %q, want 172.30.5.1", got)
	}
	h.MustMDN("network", "disconnect", "ranged", "r")
	if addr := h.Must("ip", "-n", "r", "-o", "-4", "addr"); strings.TrimSpace(addr) != "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever" {
		t.Errorf("after leaving its last network the sandbox keeps loopback only:\n%s", addr)
	}
	if !h.Running("sleep 312") {
		t.Errorf("the sandbox's program should run on")
	}
}

// TestUsageErrorsAreOneLine and expose with the only running sandbox.
func TestUsageErrorsAndExposeShortcut(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	h.Fails(`"logs" requires exactly 1 argument`, "logs")
	h.Fails(`"network connect" requires exactly 2 arguments`, "network", "connect", "x")
	h.Fails(`"rm" requires at least 1 argument`, "rm")
	h.Fails("no sandbox is running", "expose", "45678")
	h.MustMDN("run", "-d", "--name", "only", "--", "sleep", "313")
	if out := h.MustMDN("expose", "45678"); !strings.Contains(out, "45678/tcp -> 0.0.0.0:45678") {
		t.Errorf("expose 45678 with one running sandbox: %q", out)
	}
	h.MustMDN("run", "-d", "--name", "second", "--", "sleep", "314")
	h.Fails("2 sandboxes are running (only, second)", "expose", "45679")
}
