package engine

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

// fakeKernel answers the engine's questions about a host that has
// nothing but what the test says.
type fakeKernel struct {
	running map[string]bool // sandboxes with a process
}

func (k fakeKernel) Routes() ([]netip.Prefix, error) {
	return []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16")}, nil // the host routes 172.18/16
}
func (fakeKernel) LinkExists(string) bool { return false }
func (fakeKernel) LinkType(name string) (string, bool) {
	return map[string]string{"eth0": "device", "lo": "loopback"}[name], name == "eth0" || name == "lo"
}
func (fakeKernel) SupportsLinkType(kind string) bool       { return kind != "ipvlan" }
func (fakeKernel) NetnsExists(string) bool                 { return false }
func (fakeKernel) NetnsInode(string) (uint64, error)       { return 4242, nil }
func (fakeKernel) Nameservers() []netip.Prefix             { return nil }
func (fakeKernel) HostHolds(netip.Addr, string, int) error { return nil }
func (fakeKernel) EphemeralRange() (int, int)              { return 32768, 60999 }
func (fakeKernel) ResolvConf() ([]byte, string, error) {
	return []byte("nameserver 192.0.2.53\n"), "/etc/resolv.conf", nil
}
func (fakeKernel) SysctlStep(key, value string) (*sysctl.Step, error) {
	return &sysctl.Step{Key: key, Value: value, Old: "0"}, nil
}
func (k fakeKernel) Processes(sb *store.Sandbox) ([]nsnet.Process, error) {
	if k.running[sb.Name] {
		return []nsnet.Process{{Pid: 99, Command: "sleep 1d"}}, nil
	}
	return nil, nil
}

// fakeDriver builds networks by printing what it would do.
type fakeDriver struct{}

type fakeStep struct{ Text string }

func (s *fakeStep) Kind() string              { return "fake" }
func (s *fakeStep) Apply(*plan.Context) error { return nil }
func (s *fakeStep) Undo(*plan.Context) error  { return nil }
func (s *fakeStep) Commands() []string        { return []string{"fake: " + s.Text} }
func (s *fakeStep) UndoCommands() []string    { return []string{"fake: undo " + s.Text} }

func (fakeDriver) Name() string                                    { return "fake" }
func (fakeDriver) Configure(n *store.Network, opts []string) error { return nil }
func (fakeDriver) Place(n *store.Network, _ driver.Host) error {
	n.Bridge = "fake-" + n.Name
	return nil
}
func (fakeDriver) NetworkSteps(n *store.Network) []plan.Step {
	return []plan.Step{&fakeStep{"build " + n.Name}}
}
func (fakeDriver) EndpointSteps(sb *store.Sandbox, ep *store.Endpoint, n *store.Network) []plan.Step {
	return []plan.Step{&fakeStep{"attach " + sb.Name + " " + ep.IfName + " " + ep.IP.String() + " to " + n.Name}}
}
func (fakeDriver) Firewall(n *store.Network) (firewall.Network, bool) {
	return firewall.Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway}, true
}

func init() { driver.Register(fakeDriver{}) }

// planner is an engine that prints plans (dry run) against fakes, with
// records the test writes.
type planner struct {
	t   *testing.T
	e   *Engine
	fw  *firewall.Stub
	out *bytes.Buffer
	st  store.Paths
}

func newPlanner(t *testing.T, running map[string]bool) *planner {
	p := &planner{t: t, fw: &firewall.Stub{}, out: &bytes.Buffer{}, st: store.PathsFor(t.TempDir())}
	p.e = New(Options{Paths: p.st, DryRun: true, Out: p.out, Kernel: fakeKernel{running: running},
		Firewall: func(string, firewall.Family, string) firewall.Backend { return p.fw }})
	return p
}

// records writes a state as the engine would have left it.
func (p *planner) records(s *store.State) {
	st, err := store.Open(p.st, true)
	if err != nil {
		p.t.Fatal(err)
	}
	defer st.Close()
	changes, err := st.Diff(store.NewState(), s)
	if err == nil {
		err = st.Write(changes)
	}
	if err != nil {
		p.t.Fatal(err)
	}
}

// plan runs one command and returns the plan it printed. Each starts
// from the records, as a new invocation does.
func (p *planner) plan(cmd func() error) string {
	p.t.Helper()
	p.out.Reset()
	p.e.planned = nil
	if err := cmd(); err != nil {
		p.t.Fatal(err)
	}
	return p.out.String()
}

func has(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("plan lacks %q:\n%s", w, text)
		}
	}
}

// oneNetwork is a fake network "n" with sandbox "s" on it, publishing 8080.
func oneNetwork() *store.State {
	s := store.NewState()
	s.Networks["n"] = &store.Network{ID: strings.Repeat("a", 64), Name: "n", Driver: "fake", Bridge: "fake-n", Created: time.Unix(0, 0).UTC(),
		Subnet: netip.MustParsePrefix("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.1.0.1"), UserSubnet: true}
	s.Sandboxes["s"] = &store.Sandbox{ID: strings.Repeat("b", 64), Name: "s", Hostname: "bbbbbbbbbbbb", Mode: store.ModeBridge, Created: time.Unix(0, 0).UTC(),
		Endpoints: []*store.Endpoint{{ID: strings.Repeat("c", 64), Network: "n", NetworkID: strings.Repeat("a", 64), IfName: "eth0",
			IP: netip.MustParseAddr("10.1.0.2"), MAC: "02:42:0a:01:00:02", HostVeth: "mdnvcccccccc"}},
		Ports: []store.Port{{HostPort: 8080, HostPortEnd: 8080, Port: 80, PortEnd: 80, Proto: "tcp"}}}
	s.Host = store.Host{Schema: store.Schema, ForwardingEnabled: true, ForwardPolicyWas: "ACCEPT"}
	return s
}

func TestPlanNetworkCreate(t *testing.T) {
	p := newPlanner(t, nil)
	out := p.plan(func() error { _, err := p.e.CreateNetwork(NetworkRequest{Name: "x", Driver: "fake"}); return err })
	// 172.18/16 is routed by the (fake) host: the next pool.
	has(t, out, "# network create x", "sysctl -w net.ipv4.ip_forward=1", "fake: build x", "# firewall: 1 networks, 0 published ports")
	if c := p.fw.Changes; len(c) != 1 || len(c[0][1].Networks) != 1 || c[0][1].Networks[0].Subnet.String() != "172.19.0.0/16" || !c[0][1].ForwardDrop {
		t.Errorf("firewall intent: %+v", c)
	}
}

func TestPlanRunConnectPublishRm(t *testing.T) {
	p := newPlanner(t, map[string]bool{"s": true})
	p.records(oneNetwork())
	out := p.plan(func() error {
		_, err := p.e.CreateSandbox(RunRequest{Name: "r", Network: "n", IP: "10.1.0.9", Ports: []string{"9090:90"}, Detach: true})
		return err
	})
	// The intents a change is asked for carry the ports of the sandboxes
	// that changed only: r's, not s's.
	has(t, out, "ip netns add r", "fake: attach r eth0 10.1.0.9 to n", "ip -n r route replace default via 10.1.0.1 dev eth0", "# firewall: 1 networks, 1 published ports")
	if ports := p.fw.Changes[0][1].Ports; len(ports) != 1 || ports[0].Sandbox != "r" || ports[0].IP.String() != "10.1.0.9" || ports[0].HostPort != 9090 {
		t.Errorf("firewall ports: %+v", ports)
	}

	out = p.plan(func() error { return p.e.Connect(ConnectRequest{Network: "bridge", Sandbox: "s"}) })
	// The default network (a bridge one) comes with its first user; s's
	// second interface is eth1.
	has(t, out, "ip link add mdn0", "type veth peer name eth1", "ip addr add 172.17.0.1/16 dev mdn0")

	out = p.plan(func() error { _, err := p.e.Expose("s", []string{"7000"}); return err })
	has(t, out, "# expose s 7000", "# firewall: 1 networks, 2 published ports")

	out = p.plan(func() error { return p.e.RemoveSandbox("s", true) })
	has(t, out, "fake: undo attach s eth0 10.1.0.2 to n", "ip netns del s", "rm -f "+p.st.LogFile("s"), `"net:[4242]" ]; then kill -9`)
	if strings.Index(out, "ip netns del s") > strings.Index(out, "kill -9") {
		t.Errorf("the kill is the last step, after everything that can fail:\n%s", out)
	}
	if c := p.fw.Changes[len(p.fw.Changes)-1][1]; len(c.Ports) != 0 {
		t.Errorf("rm leaves no published port in the intent: %+v", c.Ports)
	}
	p.e.planned = nil // a new invocation, from the records
	if err := p.e.RemoveSandbox("s", false); err == nil || !strings.Contains(err.Error(), "it has running processes") {
		t.Errorf("rm without -f of a running sandbox: %v", err)
	}
}

// TestPlanIPv6Network: an IPv6 bridge network plans its IPv6 half beside
// IPv4's: the host's IPv6 forwarding, the bridge's IPv6 sysctls and
// gateway, a ULA /64 from the engine ID, then a sandbox's IPv6 address,
// route and the IPv6 intent with its published port; removing the last
// IPv6 network puts forwarding back.
func TestPlanIPv6Network(t *testing.T) {
	p := newPlanner(t, nil)
	out := p.plan(func() error { _, err := p.e.CreateNetwork(NetworkRequest{Name: "v6", IPv6: true}); return err })
	has(t, out, "sysctl -w net.ipv6.conf.all.forwarding=1", "sysctl -w net.ipv6.conf.mdn-v6.disable_ipv6=0",
		"sysctl -w net.ipv6.conf.mdn-v6.accept_ra=0", "::1/64 dev mdn-v6 nodad")
	if len(p.fw.Changes) != 2 || len(p.fw.Changes[1][1].Networks) != 1 || !p.fw.Changes[1][1].Networks[0].Subnet.Addr().Is6() {
		t.Fatalf("an IPv6 intent beside IPv4's: %+v", p.fw.Changes)
	}
	if _, err := os.Stat(p.st.EngineIDFile()); err == nil {
		t.Error("a dry run kept an engine ID")
	}

	sub := netip.MustParsePrefix("2001:db8:7::/64")
	s := store.NewState()
	s.Networks["v6"] = &store.Network{ID: strings.Repeat("a", 64), Name: "v6", Driver: driver.Bridge, Bridge: "mdn-v6", Created: time.Unix(0, 0).UTC(),
		Subnet: netip.MustParsePrefix("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.1.0.1"),
		IPv6: true, Subnet6: sub, Gateway6: netip.MustParseAddr("2001:db8:7::1"), UserSubnet6: true}
	s.Host = store.Host{Schema: store.Schema, ForwardingEnabled: true, ForwardPolicyWas: "ACCEPT", Forwarding6Enabled: true, Forward6PolicyWas: "ACCEPT"}
	p.records(s)
	out = p.plan(func() error {
		_, err := p.e.CreateSandbox(RunRequest{Name: "r", Network: "v6", IP6: "2001:db8:7::9", Ports: []string{"8080:80"}, Detach: true})
		return err
	})
	has(t, out, "ip netns exec r sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0", "ip -n r addr add 2001:db8:7::9/64 dev eth0 nodad",
		"ip -n r -6 route replace default via 2001:db8:7::1 dev eth0")
	last := p.fw.Changes[len(p.fw.Changes)-1][1]
	if len(last.Ports) != 1 || last.Ports[0].IP.String() != "2001:db8:7::9" || last.Ports[0].HostPort != 8080 {
		t.Errorf("the port over IPv6: %+v", last.Ports)
	}
	out = p.plan(func() error { return p.e.RemoveNetwork("v6") })
	has(t, out, "sysctl -w net.ipv6.conf.all.forwarding=0", "sysctl -w net.ipv4.ip_forward=0")
}

// TestDryRunsCompose: the commands of one invocation (network rm a b)
// plan each from where the one before ended, so that the printed plans,
// run in order, do what the command does: here the second removal is the
// last network's, and puts IP forwarding back.
func TestDryRunsCompose(t *testing.T) {
	p := newPlanner(t, nil)
	s := oneNetwork()
	delete(s.Sandboxes, "s")
	m := *s.Networks["n"]
	m.Name, m.ID, m.Bridge, m.Subnet = "m", strings.Repeat("d", 64), "fake-m", netip.MustParsePrefix("10.2.0.0/24")
	s.Networks["m"] = &m
	p.records(s)
	out := p.plan(func() error {
		if err := p.e.RemoveNetwork("n"); err != nil {
			return err
		}
		return p.e.RemoveNetwork("m")
	})
	if !strings.Contains(out, "# network rm m") || !strings.Contains(out[strings.Index(out, "# network rm m"):], "sysctl -w net.ipv4.ip_forward=0") {
		t.Errorf("the second plan does not start where the first ended:\n%s", out)
	}
	if strings.Contains(out[:strings.Index(out, "# network rm m")], "ip_forward") {
		t.Errorf("the first removal is not the last network's:\n%s", out)
	}
}

// TestPlanMacvlan: a macvlan network builds nothing on the host and
// writes no rule; its sandbox's interface is a port of the parent made in
// the sandbox and renamed, with the default route to the LAN's gateway;
// the parent, the kernel and Docker's sharing rules are checked first.
func TestPlanMacvlan(t *testing.T) {
	p := newPlanner(t, nil)
	for _, c := range []struct {
		req  NetworkRequest
		want string
	}{
		{NetworkRequest{Name: "m", Driver: "macvlan", Options: []string{"parent=eth9"}}, "-o parent interface was not found on the host: eth9"},
		{NetworkRequest{Name: "m", Driver: "macvlan", Options: []string{"parent=eth0.5000"}}, "vlan id must be between 1-4094, received: 5000"},
		{NetworkRequest{Name: "m", Driver: "macvlan", Options: []string{"parent=eth9.10"}}, "-o parent interface was not found on the host: eth9"},
		{NetworkRequest{Name: "m", Driver: "macvlan", Options: []string{"parent=eth0.x"}}, "required interface name format is: name.vlan_id"},
		{NetworkRequest{Name: "m", Driver: "macvlan", Options: []string{"parent=lo"}}, "loopback interface is not a valid macvlan parent link"},
		{NetworkRequest{Name: "m", Driver: "ipvlan", Options: []string{"parent=eth0"}}, "this kernel has no ipvlan support"},
		{NetworkRequest{Name: "m", Driver: "macvlan", Options: []string{"parent=eth0", "macvlan_mode=loud"}}, "requested macvlan mode 'loud' is not valid, 'bridge' mode is the macvlan driver default"},
	} {
		if _, err := p.e.CreateNetwork(c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.req, err, c.want)
		}
	}
	out := p.plan(func() error {
		_, err := p.e.CreateNetwork(NetworkRequest{Name: "lan", Driver: "macvlan", Subnets: []string{"192.0.2.0/24"}, Options: []string{"parent=eth0"}})
		return err
	})
	if strings.Contains(out, "ip_forward") || !strings.Contains(out, "# firewall: 0 networks") {
		t.Errorf("a macvlan network changes the host's forwarding or firewall:\n%s", out)
	}
	s := store.NewState()
	s.Networks["lan"] = &store.Network{ID: strings.Repeat("a", 64), Name: "lan", Driver: "macvlan", Created: time.Unix(0, 0).UTC(),
		Subnet: netip.MustParsePrefix("192.0.2.0/24"), Gateway: netip.MustParseAddr("192.0.2.1"), UserSubnet: true, Options: map[string]string{"parent": "eth0"}}
	p.records(s)
	out = p.plan(func() error {
		_, err := p.e.CreateSandbox(RunRequest{Name: "r", Network: "lan", Detach: true})
		return err
	})
	has(t, out, "ip link add mdnt", " link eth0 address 02:42:c0:00:02:02 netns r type macvlan mode bridge", "ip -n r link set mdnt",
		" name eth0", "ip -n r addr add 192.0.2.2/24 dev eth0", "ip -n r route replace default via 192.0.2.1 dev eth0")
	// ipvlan L3: no gateway, "default dev eth0", as Docker (the kernel of
	// this plan supports ipvlan; the fake's does not, so this plan is
	// built from a record).
	s.Networks["l3"] = &store.Network{ID: strings.Repeat("e", 64), Name: "l3", Driver: "ipvlan", Created: time.Unix(0, 0).UTC(),
		Subnet: netip.MustParsePrefix("198.18.0.0/24"), Gateway: netip.MustParseAddr("198.18.0.1"), Options: map[string]string{"parent": "eth1", "ipvlan_mode": "l3"}}
	p.records(s)
	out = p.plan(func() error {
		_, err := p.e.CreateSandbox(RunRequest{Name: "q", Network: "l3", Detach: true})
		return err
	})
	has(t, out, "ip link add mdnt", " link eth1 netns q type ipvlan mode l3 bridge", "ip -n q route replace default dev eth0")
	if strings.Contains(out, "address 02:42") {
		t.Errorf("an ipvlan port with a MAC of its own:\n%s", out)
	}
	p.e.planned = nil
	if _, err := p.e.CreateSandbox(RunRequest{Name: "q2", Network: "l3", MAC: "02:00:00:00:00:01", Detach: true}); err == nil ||
		!strings.Contains(err.Error(), "ipvlan interfaces do not support custom mac address assignment") {
		t.Errorf("--mac-address on ipvlan: %v", err)
	}
	if _, err := p.e.CreateNetwork(NetworkRequest{Name: "pt", Driver: "macvlan", Options: []string{"parent=eth0", "macvlan_mode=passthru"}}); err == nil ||
		!strings.Contains(err.Error(), "cannot use mode passthru, macvlan network lan is already using parent interface eth0") {
		t.Errorf("passthru on a used parent: %v", err)
	}
}

// TestPlanLanParents: a parent written IF.VLAN is created (and goes with
// the last network on it, handed from one to the next), and a network
// without a parent gets a dummy link of its own and is internal, as
// Docker's.
func TestPlanLanParents(t *testing.T) {
	p := newPlanner(t, nil)
	out := p.plan(func() error {
		_, err := p.e.CreateNetwork(NetworkRequest{Name: "v", Driver: "macvlan", Options: []string{"parent=eth0.10"}})
		return err
	})
	has(t, out, "ip link add link eth0 name eth0.10 type vlan id 10", "ip link set eth0.10 up")
	out = p.plan(func() error {
		n, err := p.e.CreateNetwork(NetworkRequest{Name: "d", Driver: "macvlan"})
		if err == nil && (!n.Internal || !n.ParentCreated || !strings.HasPrefix(n.Options["parent"], "mdnd")) {
			t.Errorf("a parentless network: %+v", n)
		}
		return err
	})
	has(t, out, "ip link add mdnd", " type dummy")

	s := store.NewState()
	for i, name := range []string{"v1", "v2"} {
		s.Networks[name] = &store.Network{ID: strings.Repeat(string(rune('a'+i)), 64), Name: name, Driver: "macvlan", Created: time.Unix(0, 0).UTC(),
			Subnet: netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/24", 50+i)), Gateway: netip.MustParseAddr(fmt.Sprintf("10.%d.0.1", 50+i)),
			Options: map[string]string{"parent": "eth0.10"}, ParentCreated: i == 0}
	}
	p.records(s)
	out = p.plan(func() error {
		if err := p.e.RemoveNetwork("v1"); err != nil {
			return err
		}
		return p.e.RemoveNetwork("v2")
	})
	first, second, _ := strings.Cut(out, "# network rm v2")
	if strings.Contains(first, "ip link del eth0.10") || !strings.Contains(second, "ip link del eth0.10") {
		t.Errorf("the VLAN link goes with the last network on it:\n%s", out)
	}
}
