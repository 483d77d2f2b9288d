package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// twoOnOverlay is two hosts in a cluster with an overlay network "ov",
// sandbox a on host1 and b on host2.
func twoOnOverlay(t *testing.T) (*Cluster, *Host, *Host) {
	t.Helper()
	c := NewCluster(t, 2)
	h1, h2 := c.Hosts[0], c.Hosts[1]
	c.Join()
	h1.MustMDN("network", "create", "-d", "overlay", "ov")
	h1.MustMDN("run", "-d", "--net", "ov", "--name", "a")
	h2.MustMDN("run", "-d", "--net", "ov", "--name", "b")
	return c, h1, h2
}

// endpoints are an overlay network's endpoints as a host's inspect lists
// them: name -> address.
func endpoints(t *testing.T, h *Host, network string) map[string]string {
	t.Helper()
	r := h.MDN("network", "inspect", network)
	var out []struct {
		Containers map[string]struct{ Name, IPv4Address string }
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &out) != nil || len(out) != 1 {
		return nil
	}
	m := map[string]string{}
	for _, c := range out[0].Containers {
		m[c.Name] = strings.TrimSuffix(c.IPv4Address, "/24")
	}
	return m
}

// TestOverlayStoreDown: with etcd unreachable, a command that needs it
// fails within 5 s with a clear error and changes nothing (kernel,
// records, etcd); local networks keep working; once etcd is back, so is
// the overlay.
func TestOverlayStoreDown(t *testing.T) {
	t.Parallel()
	c, h1, h2 := twoOnOverlay(t)
	keys := c.Keys()
	c.StopEtcd()
	// Local networks keep working, and ls shows them with a warning.
	h1.MustMDN("network", "create", "local")
	h1.MustMDN("run", "-d", "--net", "local", "--name", "l1")
	h1.MustMDN("run", "-d", "--net", "local", "--name", "l2")
	if !h1.Ping("l1", "l2") {
		t.Error("a local network does not work while etcd is down")
	}
	for _, args := range [][]string{
		{"network", "create", "-d", "overlay", "ov2"},
		{"run", "-d", "--net", "ov", "--name", "x"},
		{"network", "connect", "ov", "l1"},
		{"rm", "-f", "a"},
		{"node", "ls"},
	} {
		start := time.Now()
		h1.Fails("the cluster store etcd://192.168.77.1:2379 does not answer", args...)
		if d := time.Since(start); d > 5*time.Second+time.Second { // Fails also takes two snapshots
			t.Errorf("%v took %s with etcd down", args, d)
		}
	}
	if r := h1.MDN("network", "ls"); r.Code != 0 || !strings.Contains(r.Stdout, "local") || !strings.Contains(r.Stderr, "WARNING: overlay networks are not shown") {
		t.Errorf("network ls with etcd down: %s", r)
	}
	// Sandboxes already on the overlay keep talking: the tunnels are in
	// the kernel.
	if !h1.Ping("a", "b") {
		t.Error("a and b lost each other while etcd was down")
	}
	c.StartEtcd()
	if got := c.Keys(); got != keys {
		t.Errorf("etcd's keys changed while it was down:\nbefore %s\nafter %s", keys, got)
	}
	h1.MustMDN("run", "-d", "--net", "ov", "--name", "x")
	// The other host learns x from its watch, which has just started
	// again too.
	Eventually(t, 5*time.Second, "b reaches x once etcd is back", func() bool { return h2.Ping("b", "x") })
	h1.MustMDN("rm", "-f", "a", "x", "l1", "l2")
	h2.MustMDN("rm", "-f", "b")
	h1.MustMDN("network", "rm", "ov", "local")
}

// TestOverlayHostKilled: a host killed without leaving (every process in
// its namespaces gone at once) is gone from the others' tunnels, from
// network inspect and node ls within 30 s, and its address is free again.
func TestOverlayHostKilled(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 3)
	h1, h2, h3 := c.Hosts[0], c.Hosts[1], c.Hosts[2]
	c.Join()
	h1.MustMDN("network", "create", "-d", "overlay", "--subnet", "10.20.0.0/24", "ov")
	h1.MustMDN("run", "-d", "--net", "ov", "--name", "a")
	h2.MustMDN("run", "-d", "--net", "ov", "--name", "b")
	h3.MustMDN("run", "-d", "--net", "ov", "--name", "c")
	if !h1.Ping("a", "c") {
		t.Fatal("a does not reach c")
	}
	cIP := endpoints(t, h1, "ov")["c"]
	c.Kill(2)
	took := Eventually(t, 30*time.Second, "the killed host's endpoint gone from host1's tunnel, inspect and node ls", func() bool {
		fdb := h1.MustSh("bridge -n $(ls /var/run/netns | grep mdnov-) fdb show | grep dst || true")
		neigh := h1.MustSh("ip -n $(ls /var/run/netns | grep mdnov-) neigh show " + cIP)
		_, listed := endpoints(t, h1, "ov")["c"]
		return !strings.Contains(fdb, "192.168.77.13") && strings.TrimSpace(neigh) == "" && !listed && !strings.Contains(h2.MustMDN("node", "ls"), "host3")
	})
	t.Logf("host3's endpoints were gone %s after it was killed", took.Round(100*time.Millisecond))
	// Its address is free again.
	h2.MustMDN("run", "-d", "--net", "ov", "--ip", cIP, "--name", "d")
	if !h1.Ping("a", "d") {
		t.Error("a does not reach d, on the dead host's old address")
	}
	h1.MustMDN("rm", "-f", "a")
	h2.MustMDN("rm", "-f", "b", "d")
	h1.MustMDN("network", "rm", "ov")
}

// TestOverlayStoreRestart: etcd killed and restarted while the hosts
// live, down for longer than the hosts' lease: each host notices its dead
// keep-alive, takes up its lease again (etcd restores leases, with a
// fresh TTL, when it restarts) and writes again what it owns; nothing is
// lost (names, tunnels, inspect, for longer than the old lease), and no
// address is handed out twice.
func TestOverlayStoreRestart(t *testing.T) {
	t.Parallel()
	c, h1, h2 := twoOnOverlay(t)
	want := endpoints(t, h1, "ov")
	c.StopEtcd()
	time.Sleep(12 * time.Second) // longer than the lease (10 s)
	c.StartEtcd()
	restarted := time.Now()
	Eventually(t, 30*time.Second, "both hosts and their endpoints back in etcd", func() bool {
		got := endpoints(t, h2, "ov")
		return len(got) == 2 && got["a"] == want["a"] && got["b"] == want["b"] && strings.Count(h1.MustMDN("node", "ls"), "Ready") == 2
	})
	// Past the restored old leases' expiry: still there.
	time.Sleep(time.Until(restarted.Add(13 * time.Second)))
	if got := endpoints(t, h1, "ov"); len(got) != 2 {
		t.Errorf("endpoints after the old leases ran out: %v", got)
	}
	if !h1.Ping("a", "b") || h1.Resolves("a", "b") != want["b"] {
		t.Error("a does not reach b by name after etcd's restart")
	}
	h2.MustMDN("run", "-d", "--net", "ov", "--name", "x")
	got := endpoints(t, h1, "ov")
	if got["x"] == "" || got["x"] == got["a"] || got["x"] == got["b"] {
		t.Errorf("a new sandbox's address after the restart: %v", got)
	}
	h1.MustMDN("rm", "-f", "a")
	h2.MustMDN("rm", "-f", "b", "x")
	h1.MustMDN("network", "rm", "ov")
}

// TestOverlayParallel: sandboxes run at the same time on three hosts into
// one overlay network get distinct addresses, and all reach each other.
func TestOverlayParallel(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 3)
	c.Join()
	c.Hosts[0].MustMDN("network", "create", "-d", "overlay", "ov")
	var wg sync.WaitGroup
	for i, h := range c.Hosts {
		for j := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h.MustMDN("run", "-d", "--net", "ov", "--name", fmt.Sprintf("s%d%d", i+1, j))
			}()
		}
	}
	wg.Wait()
	got := endpoints(t, c.Hosts[0], "ov")
	seen := map[string]string{}
	for name, ip := range got {
		if o, dup := seen[ip]; dup {
			t.Errorf("%s and %s both have %s", o, name, ip)
		}
		seen[ip] = name
	}
	if len(got) != 9 {
		t.Fatalf("endpoints: %v", got)
	}
	for name := range got {
		if name != "s10" && !c.Hosts[0].Ping("s10", name) {
			t.Errorf("s10 does not reach %s by name: %s", name, c.Hosts[0].Sh(bin+" exec s10 -- ping -c1 -W1 "+name+"; "+bin+" exec s10 -- getent hosts "+name+"; ip -n s10 neigh; ip -n s10 route; bridge -n $(ls /var/run/netns | grep mdnov-) fdb show"))
		}
	}
	for i, h := range c.Hosts {
		h.MustMDN("rm", "-f", fmt.Sprintf("s%d0", i+1), fmt.Sprintf("s%d1", i+1), fmt.Sprintf("s%d2", i+1))
	}
	c.Hosts[0].MustMDN("network", "rm", "ov")
	if keys := c.Keys(); strings.Contains(keys, "endpoints") {
		t.Errorf("endpoint keys left: %s", keys)
	}
}

// TestOverlayRepairAndReset: doctor finds what broke in a host's part of
// an overlay network (its namespace deleted, its tunnel's entries
// flushed, its address deleted from etcd, its agent killed), doctor --fix
// mends it and traffic flows again; reset removes a host's part and its
// keys, and the last host's reset every key.
func TestOverlayRepairAndReset(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 2)
	h1, h2 := c.Hosts[0], c.Hosts[1]
	before := h1.Snapshot()
	c.Join()
	h1.MustMDN("network", "create", "-d", "overlay", "ov")
	h1.MustMDN("run", "-d", "--net", "ov", "--name", "a")
	h2.MustMDN("run", "-d", "--net", "ov", "--name", "b")
	ns := strings.TrimSpace(h1.MustSh("ls /var/run/netns | grep mdnov-"))
	if r := h1.MDN("doctor"); r.Code != 0 || !strings.Contains(r.Stdout, "overlay network ov: the tunnel knows the 1 remote endpoints") {
		t.Errorf("doctor on a healthy host: %s", r)
	}
	breaks := []struct{ what, script, finding string }{
		{"the network's namespace deleted", "ip netns del " + ns, ns},
		{"the tunnel's entries flushed", "ip -n " + ns + " neigh flush nud permanent dev $(ip -n " + ns + " -o link show type vxlan | cut -d: -f2 | cut -d@ -f1)",
			"the tunnel of overlay network ov knows 0 remote endpoints, the cluster store 1"},
		{"a's address deleted from etcd", "", "address 10.0.0.2 of sandbox a on ov is not in the cluster store"},
		{"the agent killed", "pkill -KILL -f [_]_resolver", "the cluster agent is not running"},
	}
	for _, b := range breaks {
		if b.script != "" {
			h1.MustSh(b.script)
		} else {
			c.LAN.MustSh(c.etcdctl("get --prefix --keys-only /minidocker-net/endpoints/") + " | grep /10.0.0.2$ | xargs -r env " + c.etcdctl("del"))
		}
		if r := h1.MDN("doctor"); r.Code == 0 || !strings.Contains(r.Stdout, b.finding) {
			t.Errorf("%s: doctor did not find it (%q):\n%s", b.what, b.finding, r)
		}
		h1.MustMDN("doctor", "--fix")
		if r := h1.MDN("doctor"); r.Code != 0 {
			t.Errorf("%s: doctor after --fix:\n%s", b.what, r)
		}
		if !h2.Ping("b", "a") || !h1.Ping("a", "b") {
			t.Errorf("%s: a and b do not reach each other after doctor --fix", b.what)
		}
	}
	// reset: this host's part and keys go, the other host's stay.
	h1.MustMDN("reset")
	h1.SameAs(before, "host1 after reset")
	keys := c.Keys()
	if strings.Contains(keys, "10.0.0.2") || !strings.Contains(keys, "10.0.0.3") || !strings.Contains(keys, "/minidocker-net/networks/ov") {
		t.Errorf("keys after the first host's reset: %s", keys)
	}
	Eventually(t, 5*time.Second, "a gone from host2's names", func() bool { return h2.Resolves("b", "a") == "" })
	h2.MustMDN("reset")
	if keys := c.Keys(); keys != "" {
		t.Errorf("keys after the last host's reset: %s", keys)
	}
}

// TestOverlayPartition: a host cut off from etcd for longer than its
// lease is taken for dead by the others (its endpoint goes from their
// tunnels), and when it can reach etcd again it gets a new lease and
// writes again what it owns: the others reach its sandbox again.
func TestOverlayPartition(t *testing.T) {
	t.Parallel()
	_, h1, h2 := twoOnOverlay(t)
	cut := "-d " + lanGateway + " -p tcp --dport 2379 -j DROP"
	h1.MustSh("iptables -I OUTPUT " + cut)
	Eventually(t, 30*time.Second, "host1's endpoint gone from host2's tunnel", func() bool {
		_, listed := endpoints(t, h2, "ov")["a"]
		return !listed && !strings.Contains(h2.MustSh("ip -n $(ls /var/run/netns | grep mdnov-) neigh"), "10.0.0.2 ")
	})
	h1.MustSh("iptables -D OUTPUT " + cut)
	took := Eventually(t, 15*time.Second, "host1 back, with its endpoint", func() bool {
		_, listed := endpoints(t, h2, "ov")["a"]
		return listed && h2.Ping("b", "a")
	})
	t.Logf("host1 was back %s after it could reach etcd again", took.Round(100*time.Millisecond))
	if log := h1.MustSh("cat /run/minidocker-net-throwaway/run/resolver.log"); !strings.Contains(log, "is gone from the store; lease") {
		t.Errorf("host1's agent did not take a new lease:\n%s", log)
	}
	h1.MustMDN("rm", "-f", "a")
	h2.MustMDN("rm", "-f", "b")
	h1.MustMDN("network", "rm", "ov")
}

// TestOverlayReboot: a host of the cluster reboots (the kernel loses its
// namespaces, links and rules, its process dies, its records of
// sandboxes are from an earlier boot): doctor --fix leaves it healthy,
// without the overlay network's part, which no sandbox needs; the other
// host drops its old endpoint with its lease; a sandbox run after the
// reboot is reached across the tunnel again.
func TestOverlayReboot(t *testing.T) {
	t.Parallel()
	c, h1, h2 := twoOnOverlay(t)
	h1.MustSh("pkill -KILL -f [_]_resolver") // the long-running process dies with the boot
	reboot(h1)
	h1.MustMDN("doctor", "--fix")
	mustBeHealthy(t, h1, "after doctor --fix following a reboot")
	if ns := h1.MustSh("ls /var/run/netns 2>/dev/null || true"); strings.TrimSpace(ns) != "" {
		t.Errorf("namespaces after the reboot's repair: %q", ns)
	}
	if !strings.Contains(h1.MustMDN("node", "ls"), "host1") {
		t.Error("host1 is not back in the cluster after its reboot")
	}
	Eventually(t, 20*time.Second, "a, of host1's earlier boot, gone from host2's view", func() bool {
		_, listed := endpoints(t, h2, "ov")["a"]
		return !listed
	})
	h1.MustMDN("run", "-d", "--net", "ov", "--name", "a2")
	Eventually(t, 5*time.Second, "b reaches a2, run after the reboot", func() bool { return h2.Ping("b", "a2") })
	h1.MustMDN("rm", "-f", "a2")
	h2.MustMDN("rm", "-f", "b")
	h1.MustMDN("network", "rm", "ov")
	if keys := c.Keys(); strings.Contains(keys, "endpoints") || strings.Contains(keys, "networks") {
		t.Errorf("keys left: %s", keys)
	}
}
