package model

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/store"
)

func state() *store.State {
	s := store.NewState()
	s.Networks["n"] = &store.Network{Name: "n", ID: "aa11" + strings.Repeat("0", 60), Subnet: netip.MustParsePrefix("172.18.0.0/16"), Gateway: netip.MustParseAddr("172.18.0.1")}
	s.Networks["m"] = &store.Network{Name: "m", ID: "aa22" + strings.Repeat("0", 60), Subnet: netip.MustParsePrefix("172.19.0.0/16"), Gateway: netip.MustParseAddr("172.19.0.1")}
	for i, name := range []string{"localhost", "b", "c"} {
		s.Sandboxes[name] = &store.Sandbox{Name: name, ID: "bb" + string(rune('0'+i)) + strings.Repeat("0", 61), Hostname: name + "-host", Mode: store.ModeBridge,
			Endpoints: []*store.Endpoint{{Network: "n", IfName: "eth0", IP: netip.AddrFrom4([4]byte{172, 18, 0, byte(2 + i)})}}}
	}
	return s
}

func TestFindByNameIDAndPrefix(t *testing.T) {
	s := state()
	for ref, want := range map[string]string{"b": "b", "bb1": "b", "bb2" + strings.Repeat("0", 61): "c", "n": "n"} {
		if ref == "n" {
			if got, err := NetworkName(s, ref); err != nil || got != want {
				t.Errorf("NetworkName(%q) = %q, %v", ref, got, err)
			}
			continue
		}
		if sb, err := FindSandbox(s, ref); err != nil || sb.Name != want {
			t.Errorf("FindSandbox(%q) = %v, %v; want %s", ref, sb, err, want)
		}
	}
	if _, err := FindSandbox(s, "bb"); err == nil || !strings.Contains(err.Error(), "multiple IDs found with provided prefix: bb") {
		t.Errorf("an ambiguous prefix: %v", err)
	}
	if _, err := NetworkName(s, "aa"); err == nil || !strings.Contains(err.Error(), "network aa is ambiguous (2 matches found based on ID prefix)") {
		t.Errorf("an ambiguous network prefix: %v", err)
	}
	if _, err := FindSandbox(s, "zz"); err == nil || err.Error() != "No such sandbox: zz" {
		t.Errorf("a missing sandbox: %v", err)
	}
	for _, p := range []string{"bridge", "host", "none", BuiltinID("host")[:8]} {
		if _, err := NetworkName(s, p); err != nil {
			t.Errorf("pre-defined network %q: %v", p, err)
		}
	}
}

func TestHostsFileShadowsNothing(t *testing.T) {
	s := state()
	s.Sandboxes["b"].Hostname = "web.example.com"
	s.Sandboxes["b"].Endpoints[0].Aliases = []string{"host.docker.internal", "api"}
	hosts := HostsFile(s, s.Sandboxes["c"])
	for _, l := range strings.Split(hosts, "\n") {
		if strings.HasPrefix(l, "172.18.") && (strings.Contains(l, "localhost") || strings.Contains(l, "host.docker.internal") && !strings.HasPrefix(l, "172.18.0.1\t")) {
			t.Errorf("a sandbox shadows a host name: %q in\n%s", l, hosts)
		}
	}
	// Neighbours are the embedded DNS's, with their other names.
	if addrs, known := Lookup(s, s.Sandboxes["c"], "api"); !known || len(addrs) != 1 || addrs[0].String() != "172.18.0.3" {
		t.Errorf("c resolves b's alias api: %v %v", addrs, known)
	}
	if strings.Contains(hosts, "172.18.0.3") {
		t.Errorf("a neighbour in the hosts file:\n%s", hosts)
	}
	if own := HostsFile(s, s.Sandboxes["b"]); !strings.Contains(own, "172.18.0.3\tweb.example.com web b api\n") {
		t.Errorf("an FQDN hostname is written with its short name:\n%s", own)
	}
}

func TestDefaultNeeded(t *testing.T) {
	s := state()
	if DefaultNeeded(s) {
		t.Errorf("no sandbox on bridge, no host-gateway: not needed")
	}
	s.Sandboxes["b"].ExtraHosts = []store.HostEntry{{Name: "gw"}}
	if !DefaultNeeded(s) {
		t.Errorf("host-gateway needs the default bridge")
	}
	s.Sandboxes["b"].Mode = store.ModeHost
	if DefaultNeeded(s) {
		t.Errorf("a host-mode sandbox's extra hosts are not written")
	}
}

// A command's intents carry the ports of the sandboxes it changed only,
// and give the backends the same change as the whole intents do.
func TestIntentChangeIsTheChangedSandboxes(t *testing.T) {
	old := state()
	for _, n := range old.Networks {
		n.Driver, n.Bridge = "bridge", "mdn-"+n.Name
	}
	port := func(p int) store.Port {
		return store.Port{HostPort: p, HostPortEnd: p, Port: p, PortEnd: p, Proto: "tcp"}
	}
	old.Sandboxes["b"].Ports = store.PortList{port(80), port(81)}
	old.Sandboxes["c"].Ports = store.PortList{port(90)}
	cur := old.Clone()
	cur.Sandboxes["b"].Ports = append(cur.Sandboxes["b"].Ports, port(82))
	from, to := IntentChange(old, cur)
	for _, in := range []firewall.Intent{from, to} {
		for _, p := range in.Ports {
			if p.Sandbox != "b" {
				t.Errorf("an unchanged sandbox's port in the change's intent: %+v", p)
			}
		}
	}
	if len(from.Ports) != 2 || len(to.Ports) != 3 || len(to.Networks) != 2 {
		t.Errorf("from %d ports, to %d ports and %d networks", len(from.Ports), len(to.Ports), len(to.Networks))
	}
	b1, a1 := firewall.ChangedPorts(from, to)
	b2, a2 := firewall.ChangedPorts(Intent(old), Intent(cur))
	if !slices.Equal(b1, b2) || !slices.Equal(a1, a2) {
		t.Errorf("the change differs from the whole intents': %v %v, want %v %v", b1, a1, b2, a2)
	}
}
