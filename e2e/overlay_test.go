package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOverlay: three hosts on one etcd, one overlay network across them,
// as Docker's overlay driver: sandboxes on different hosts reach each
// other by name (ICMP, TCP, UDP), a second overlay network and a bridge
// network stay apart, traffic leaves by the gateway bridge, a port
// published on an overlay sandbox answers, every host lists the network
// with all its endpoints, and everything is removed again: every host
// byte-identical, no key left in etcd.
func TestOverlay(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 3)
	h1, h2, h3 := c.Hosts[0], c.Hosts[1], c.Hosts[2]
	var before []Snapshot
	for _, h := range c.Hosts {
		before = append(before, h.Snapshot())
	}
	c.Join()
	if got := h1.MustMDN("node", "ls"); strings.Count(got, "Ready") != 3 || !strings.Contains(got, "host2") {
		t.Errorf("node ls: %s", got)
	}
	h1.MustMDN("network", "create", "-d", "overlay", "ov")
	h2.MustMDN("network", "create", "-d", "overlay", "--subnet", "10.9.0.0/24", "other")
	if got := h3.MustMDN("network", "ls", "--filter", "driver=overlay"); !strings.Contains(got, "ov") || !strings.Contains(got, "global") || !strings.Contains(got, "10.0.0.0/24") {
		t.Errorf("network ls on another host: %s", got)
	}
	h1.MustMDN("run", "-d", "--net", "ov", "--name", "a")
	h2.MustMDN("run", "-d", "--net", "ov", "--name", "b", "-p", "8080:80")
	h3.MustMDN("run", "-d", "--net", "ov", "--name", "c")
	h3.MustMDN("run", "-d", "--net", "other", "--name", "d")
	h3.MustMDN("network", "create", "local")
	h3.MustMDN("run", "-d", "--net", "local", "--name", "e")

	// The kernel, as Docker's overlay lays it out.
	if got := h1.MustSh("ip -n a -o link show eth0"); !strings.Contains(got, "mtu 1450") || !strings.Contains(got, "02:42:0a:00:00:02") {
		t.Errorf("a's eth0: %q", got)
	}
	if got := h1.MustSh("ip -n a route"); !strings.Contains(got, "default via 172.") || !strings.Contains(got, "10.0.0.0/24 dev eth0") {
		t.Errorf("a's routes (default by the gateway bridge): %q", got)
	}
	ns := strings.TrimSpace(h1.MustSh("ls /var/run/netns | grep mdnov-"))
	if got := h1.MustSh("ip -n " + ns + " -d link show type vxlan"); !strings.Contains(got, "vxlan id 256") || !strings.Contains(got, "dstport 4789") || !strings.Contains(got, "nolearning") {
		t.Errorf("the vxlan device: %q", got)
	}
	if got := h1.MustSh("bridge -n " + ns + " fdb show | grep dst"); !strings.Contains(got, "02:42:0a:00:00:03 dev vx-000100") || !strings.Contains(got, "dst 192.168.77.12") || !strings.Contains(got, "dst 192.168.77.13") {
		t.Errorf("host1's forwarding entries for the remote endpoints: %q", got)
	}
	c.LAN.ServeOn("", "tcp", lanGateway, 9000)
	// By name, across hosts.
	if !h1.Ping("a", "b") || !h1.Ping("a", "c") || !h3.Ping("c", "a") {
		t.Error("sandboxes on three hosts do not reach each other by name")
	}
	if got := h1.Resolves("a", "b"); got != "10.0.0.3" {
		t.Errorf("a resolves b to %q", got)
	}
	h2.Serve("b", "tcp", 7000)
	h2.Serve("b", "udp", 7001)
	if reply, ok := h1.Reach("a", "tcp", "b:7000"); !ok || !strings.Contains(reply, "from 10.0.0.2:") {
		t.Errorf("TCP a -> b: %q %v", reply, ok)
	}
	if reply, ok := h3.Reach("c", "udp", "b:7001"); !ok || !strings.Contains(reply, "from 10.0.0.4:") {
		t.Errorf("UDP c -> b: %q %v", reply, ok)
	}
	// Apart: another overlay, a bridge network.
	if h3.Ping("d", "10.0.0.2") || h3.Ping("e", "10.0.0.2") || h3.Ping("c", "10.9.0.2") {
		t.Error("an overlay network reaches or is reached from another network")
	}
	if got := h3.Resolves("d", "a"); got != "" {
		t.Errorf("d (on another overlay) resolves a: %q", got)
	}
	// Out by the gateway bridge, masqueraded to the host's LAN address.
	if reply, ok := h1.Reach("a", "tcp", lanGateway+":9000"); !ok || !strings.Contains(reply, "from 192.168.77.11:") {
		t.Errorf("a does not reach the LAN through the gateway bridge: %q %v", reply, ok)
	}
	// A published port on an overlay sandbox, from the LAN.
	h2.Serve("b", "tcp", 80)
	if reply, ok := c.LAN.Reach("", "tcp", "192.168.77.12:8080"); !ok {
		t.Errorf("b's published port from the LAN: %q %v", reply, ok)
	}
	// Every host sees every endpoint.
	var inspect []struct {
		Scope      string
		Containers map[string]struct{ Name, IPv4Address string }
	}
	if err := json.Unmarshal([]byte(h3.MustMDN("network", "inspect", "ov")), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	var names []string
	for _, ct := range inspect[0].Containers {
		names = append(names, ct.Name+"="+ct.IPv4Address)
	}
	if inspect[0].Scope != "global" || len(names) != 3 || !strings.Contains(strings.Join(names, " "), "a=10.0.0.2/24") {
		t.Errorf("inspect ov on host3: scope %s, %v", inspect[0].Scope, names)
	}
	h1.Fails("has active endpoints", "network", "rm", "ov")
	h2.Fails("network with name ov already exists", "network", "create", "ov")
	h2.Fails("network with name ov already exists", "network", "create", "-d", "overlay", "ov")
	// An internal overlay network: across hosts, but no way out (no
	// gateway bridge, no default route).
	h1.MustMDN("network", "create", "-d", "overlay", "--internal", "iov")
	h1.MustMDN("run", "-d", "--net", "iov", "--name", "f")
	h2.MustMDN("run", "-d", "--net", "iov", "--name", "g")
	if !h1.Ping("f", "g") {
		t.Error("f and g, on an internal overlay network on two hosts, do not reach each other")
	}
	if got := h1.MustSh("ip -n f route; ip -n f -br link"); strings.Contains(got, "default") || strings.Contains(got, "eth1") {
		t.Errorf("a sandbox on an internal overlay network has a way out: %q", got)
	}
	if reply, ok := h1.Reach("f", "tcp", lanGateway+":9000"); ok {
		t.Errorf("f, on an internal overlay network, reaches the LAN: %q", reply)
	}
	h1.MustMDN("rm", "-f", "f")
	h2.MustMDN("rm", "-f", "g")
	h1.MustMDN("network", "rm", "iov")
	// A dry run prints the store's claims and the kernel's steps, and
	// changes nothing, in etcd either.
	keys := c.Keys()
	if got := h1.MustMDN("--dry-run", "network", "create", "-d", "overlay", "dry"); !strings.Contains(got, "put /minidocker-net/networks/dry") {
		t.Errorf("dry-run create: %s", got)
	}
	if got := h3.MustMDN("--dry-run", "run", "-d", "--net", "ov", "--name", "dry"); !strings.Contains(got, "put /minidocker-net/endpoints/") || !strings.Contains(got, "type veth peer name eth0 address 02:42:0a:00:00:05 mtu 1450 netns dry") {
		t.Errorf("dry-run run: %s", got)
	}
	if got := c.Keys(); got != keys {
		t.Errorf("a dry run changed etcd:\nbefore %s\nafter %s", keys, got)
	}
	// graph draws the other hosts and the tunnel to them.
	if got := h1.MustMDN("graph"); !strings.Contains(got, `label="host host2 (192.168.77.12)"`) || !strings.Contains(got, `[label="VXLAN"`) || !strings.Contains(got, "VXLAN vx-000100-") {
		t.Errorf("graph on host1:\n%s", got)
	}
	h1.MustSh(bin + " graph --format svg >/dev/null")
	// trace follows the frame into the tunnel, and the probes agree.
	h1.Traces([]traceCase{
		{[]string{"--probe", "a", "b:7000/tcp"}, 0, "the frame is wrapped in VXLAN (VNI 256) in UDP to 192.168.77.12:4789"},
		{[]string{"--probe", "a", "b:7001/udp"}, 0, "arrives at b on host2 (192.168.77.12), across the tunnel"},
		{[]string{"--probe", "a", "10.0.0.99:80/tcp"}, 1, "nobody on overlay network ov has 10.0.0.99, on any host"},
		{[]string{"--probe", "a", lanGateway + ":9000/tcp"}, 0, "via 172.18.0.1 dev eth1 (the default route, network mdn_gwbridge)"},
	})
	h3.Traces([]traceCase{
		{[]string{"--probe", "d", "a"}, 1, "does not resolve"},
		{[]string{"--probe", "c", "10.0.0.2:22/tcp"}, 0, "arrives at a on host1 (192.168.77.11), across the tunnel"},
	})

	// Down again.
	h1.MustMDN("rm", "-f", "a")
	Eventually(t, 5e9, "a's entries gone from host2's tunnel", func() bool {
		return !strings.Contains(h2.MustSh("bridge -n $(ls /var/run/netns | grep mdnov- | head -1) fdb show"), "02:42:0a:00:00:02")
	})
	h2.MustMDN("rm", "-f", "b")
	h3.MustMDN("rm", "-f", "c", "d", "e")
	h3.MustMDN("network", "rm", "local")
	h2.MustMDN("network", "rm", "ov", "other")
	for i, h := range c.Hosts {
		h.MustMDN("node", "leave")
		h.SameAs(before[i], "host%d after everything was removed", i+1)
	}
	if keys := c.Keys(); keys != "" {
		t.Errorf("keys left in etcd: %s", keys)
	}
}
