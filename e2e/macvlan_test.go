package e2e

import (
	"strings"
	"testing"
)

// lan is the throwaway host's LAN for macvlan: the uplink up0 (the host,
// 203.0.113.1) and the outside namespace "internet" (203.0.113.2, also the
// LAN's gateway to 198.51.100.1) on one segment, with sandboxes taking
// 203.0.113.128/25.
func lan(t *testing.T, h *Host, name string, opts ...string) {
	t.Helper()
	args := append([]string{"network", "create", "-d", "macvlan", "--subnet", "203.0.113.0/24", "--gateway", "203.0.113.2",
		"--ip-range", "203.0.113.128/25", "-o", "parent=up0"}, opts...)
	h.MustMDN(append(args, name)...)
}

// TestMacvlan: sandboxes straight on the LAN, as with Docker's macvlan
// driver: the outside reaches them at their LAN address and they reach
// it through the LAN's gateway, two of them reach each other (mode
// bridge), the host does not reach its own children, no rule is written,
// -p only warns, and removal leaves the host as it was.
func TestMacvlan(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet(t, h)
	before := h.Snapshot()
	lan(t, h, "lan")
	r := h.MDN("run", "-d", "--net", "lan", "--name", "a", "-p", "8080:80")
	if r.Code != 0 || !strings.Contains(r.Stderr, "WARNING: macvlan driver does not support port mappings") {
		t.Errorf("-p on a macvlan network: %s", r)
	}
	h.MustMDN("run", "-d", "--net", "lan", "--name", "b")
	if got := h.MustSh("ip -n a -d link show eth0"); !strings.Contains(got, "macvlan mode bridge") || !strings.Contains(got, "02:42:cb:00:71:80") {
		t.Errorf("a's eth0: %q", got)
	}
	if got := h.MustSh("ip -n a route show default"); !strings.Contains(got, "default via 203.0.113.2 dev eth0") {
		t.Errorf("a's default route: %q", got)
	}
	// The outside and the sandbox, straight across the LAN.
	h.ServeOn("a", "tcp", "", 7000)
	if reply, ok := h.Reach("ns:internet", "tcp", "203.0.113.128:7000"); !ok || !strings.Contains(reply, "from 203.0.113.2:") {
		t.Errorf("the outside does not reach a at its LAN address: %q %v", reply, ok)
	}
	if reply, ok := h.Reach("a", "tcp", "198.51.100.1:80"); !ok || !strings.Contains(reply, "from 203.0.113.128:") {
		t.Errorf("a does not reach the internet through the LAN's gateway, unmasqueraded: %q %v", reply, ok)
	}
	if !h.Ping("a", "b") {
		t.Error("two macvlan sandboxes (mode bridge) do not reach each other by name")
	}
	// The kernel does not hand the parent's own frames to its children.
	if h.Ping("", "203.0.113.128") {
		t.Error("the host reaches its own macvlan child")
	}
	// trace agrees, and so does a real probe.
	h.Traces([]traceCase{
		{[]string{"--probe", "host", "a"}, 1, "the host cannot reach its own macvlan children"},
		{[]string{"--probe", "a", "b"}, 0, "a sibling on up0, inside the kernel"},
		{[]string{"--probe", "a", "198.51.100.1:80"}, 0, "towards the gateway 203.0.113.2"},
	})
	if out := h.Ruleset(); strings.Contains(out, "203.0.113") {
		t.Errorf("a macvlan network wrote rules: %s", out)
	}
	h.Fails("macvlan driver does not support port mappings", "expose", "a", "9090:90")
	h.Fails("cannot use mode passthru, macvlan network lan is already using parent interface up0", "network", "create", "-d", "macvlan", "-o", "parent=up0", "-o", "macvlan_mode=passthru", "x")
	h.Fails("-o parent interface was not found on the host: nosuch0", "network", "create", "-d", "macvlan", "-o", "parent=nosuch0", "x")
	h.Fails("loopback interface is not a valid macvlan parent link", "network", "create", "-d", "macvlan", "-o", "parent=lo", "x")
	h.Fails("requested macvlan mode 'loud' is not valid", "network", "create", "-d", "macvlan", "-o", "parent=up0", "-o", "macvlan_mode=loud", "x")
	if out := h.MustMDN("doctor"); strings.Contains(out, "DRIFT") {
		t.Errorf("doctor on a macvlan network:\n%s", out)
	}
	h.MustMDN("rm", "-f", "a", "b")
	h.MustMDN("network", "rm", "lan")
	h.SameAs(before, "after the macvlan lesson")
}

// TestMacvlanModes: in mode private two sandboxes on one parent do not
// reach each other; in mode vepa they talk only through the switch, which
// must send the frame back, and the throwaway host's LAN does not. The
// outside reaches them in both, and trace says why.
func TestMacvlanModes(t *testing.T) {
	t.Parallel()
	for mode, why := range map[string]string{"private": "mode private keeps macvlan's ports apart", "vepa": "mode vepa"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := NewHost(t)
			internet(t, h)
			lan(t, h, "lan", "-o", "macvlan_mode="+mode)
			h.MustMDN("run", "-d", "--net", "lan", "--name", "a")
			h.MustMDN("run", "-d", "--net", "lan", "--name", "b")
			if h.Ping("a", "203.0.113.129") {
				t.Errorf("mode %s: a reaches b", mode)
			}
			h.Traces([]traceCase{{[]string{"--probe", "a", "203.0.113.129"}, 1, why}})
			if h.Run(in("ns:internet", "ping", "-c1", "-W1", "203.0.113.129")...).Code != 0 {
				t.Errorf("mode %s: the outside does not reach b", mode)
			}
		})
	}
}

// TestIpvlan (l2): sandboxes on the LAN with the parent's MAC. It needs a
// kernel with ipvlan; without, the error says so, changes nothing, and
// the test skips with that reason.
func TestIpvlan(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet(t, h)
	before := h.Snapshot()
	r := h.MDN("network", "create", "-d", "ipvlan", "--subnet", "203.0.113.0/24", "--gateway", "203.0.113.2", "--ip-range", "203.0.113.128/25", "-o", "parent=up0", "x")
	if r.Code != 0 && strings.Contains(r.Stderr, "this kernel has no ipvlan support") {
		h.SameAs(before, "after the refused ipvlan network")
		t.Skip("this kernel has no ipvlan (CONFIG_IPVLAN): " + strings.TrimSpace(r.Stderr))
	}
	if r.Code != 0 {
		t.Fatalf("ipvlan network: %s", r)
	}
	h.MustMDN("run", "-d", "--net", "x", "--name", "a")
	mac := strings.Fields(h.MustSh("cat /sys/class/net/up0/address"))[0]
	if got := h.MustSh("ip -n a -d link show eth0"); !strings.Contains(got, "ipvlan  mode l2 bridge") && !strings.Contains(got, "ipvlan mode l2 bridge") || !strings.Contains(got, mac) {
		t.Errorf("a's eth0 (want ipvlan l2 with %s): %q", mac, got)
	}
	if h.Run(in("ns:internet", "ping", "-c1", "-W1", "203.0.113.128")...).Code != 0 {
		t.Error("the outside does not reach an ipvlan sandbox")
	}
	h.MustMDN("rm", "-f", "a")
	h.MustMDN("network", "rm", "x")
	h.SameAs(before, "after the ipvlan network")
}

// TestMacvlanVLANParent: -o parent=up0.10 creates the 802.1Q link, a
// tagged peer on the outside reaches the sandbox over it, and the link
// goes with the network. It needs a kernel with 802.1Q; without, the
// error says so, changes nothing, and the test skips with that reason.
func TestMacvlanVLANParent(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet(t, h)
	before := h.Snapshot()
	r := h.MDN("network", "create", "-d", "macvlan", "--subnet", "192.0.2.0/24", "-o", "parent=up0.10", "v")
	if r.Code != 0 && strings.Contains(r.Stderr, "no 802.1Q VLAN support") {
		h.SameAs(before, "after the refused VLAN parent")
		t.Skip("this kernel has no 802.1Q VLANs (CONFIG_VLAN_8021Q): " + strings.TrimSpace(r.Stderr))
	}
	if r.Code != 0 {
		t.Fatalf("a VLAN parent: %s", r)
	}
	if got := h.MustSh("ip -d link show up0.10"); !strings.Contains(got, "vlan protocol 802.1Q id 10") {
		t.Errorf("up0.10: %q", got)
	}
	h.MustSh("ip -n internet link add link inet0 name inet0.10 type vlan id 10 && ip -n internet addr add 192.0.2.200/24 dev inet0.10 && ip -n internet link set inet0.10 up")
	h.MustMDN("run", "-d", "--net", "v", "--name", "a")
	if h.Run(in("ns:internet", "ping", "-c1", "-W1", "192.0.2.2")...).Code != 0 {
		t.Error("the tagged peer does not reach the sandbox over VLAN 10")
	}
	h.MustSh("ip -n internet link del inet0.10")
	h.MustMDN("rm", "-f", "a")
	h.MustMDN("network", "rm", "v")
	h.SameAs(before, "after the VLAN network, its link included")
}

// TestMacvlanParentless: without -o parent, a dummy link of the
// network's own and an internal network, as Docker's. It needs a kernel
// with dummy links; without, the error says so and the test skips.
func TestMacvlanParentless(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	before := h.Snapshot()
	r := h.MDN("network", "create", "-d", "macvlan", "--subnet", "192.0.2.0/24", "d")
	if r.Code != 0 && strings.Contains(r.Stderr, "no dummy link support") {
		h.SameAs(before, "after the refused parentless network")
		t.Skip("this kernel has no dummy links (CONFIG_DUMMY): " + strings.TrimSpace(r.Stderr))
	}
	if r.Code != 0 {
		t.Fatalf("a parentless network: %s", r)
	}
	h.MustMDN("run", "-d", "--net", "d", "--name", "a")
	h.MustMDN("run", "-d", "--net", "d", "--name", "b")
	if !h.Ping("a", "b") {
		t.Error("sandboxes on a parentless macvlan network do not reach each other")
	}
	if got := h.MustSh("ip -n a route show default"); strings.TrimSpace(got) != "" {
		t.Errorf("an internal network carries a default route: %q", got)
	}
	h.MustMDN("rm", "-f", "a", "b")
	h.MustMDN("network", "rm", "d")
	h.SameAs(before, "after the parentless network, its dummy link included")
}

// TestMacvlanRepairAndReset: a macvlan sandbox whose namespace was
// deleted is reported by doctor and rebuilt by restore; reset removes it
// all, leaving the host as it was.
func TestMacvlanRepairAndReset(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	internet(t, h)
	before := h.Snapshot()
	lan(t, h, "lan")
	h.MustMDN("run", "-d", "--net", "lan", "--name", "a")
	h.Must("ip", "netns", "del", "a")
	if out := h.MDN("doctor").Stdout; !strings.Contains(out, "sandbox a") || !strings.Contains(out, "DRIFT") {
		t.Errorf("doctor does not report the lost sandbox:\n%s", out)
	}
	h.MustMDN("restore")
	if h.Run(in("ns:internet", "ping", "-c1", "-W1", "203.0.113.128")...).Code != 0 {
		t.Error("restore did not bring the macvlan sandbox back on the LAN")
	}
	if got := h.MustSh("ip -n a -d link show eth0"); !strings.Contains(got, "macvlan mode bridge") {
		t.Errorf("after restore, a's eth0: %q", got)
	}
	h.MustMDN("reset")
	h.SameAs(before, "after reset with a macvlan network")
}
