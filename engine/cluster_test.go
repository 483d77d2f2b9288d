package engine

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/store"
)

// clusterPlanner is a planner on a host in a cluster whose store is fake.
func clusterPlanner(t *testing.T, f *cluster.Fake) *planner {
	p := newPlanner(t, nil)
	p.e = New(Options{Paths: p.st, DryRun: true, Out: p.out, Kernel: fakeKernel{},
		Firewall:     func(string, firewall.Family, string) firewall.Backend { return p.fw },
		Cluster:      cluster.Config{Store: "etcd://192.0.2.1:2379", Advertise: netip.MustParseAddr("192.0.2.11"), Host: "me"},
		ClusterStore: func(cluster.Config) (cluster.Store, error) { return f, nil }})
	return p
}

func overlayNet() *store.Network {
	return &store.Network{ID: strings.Repeat("d", 64), Name: "ov0", Driver: "overlay", Scope: store.ScopeGlobal, VNI: 256, MTU: 1450, Created: time.Unix(0, 0).UTC(),
		Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1")}
}

// TestPlanOverlay: an overlay network is claimed in the store (network,
// next VNI, next /24) in one transaction and builds nothing; a sandbox on
// one is claimed its address (the next after the other hosts') first in
// the plan, then gets the network's part on this host (namespace, bridge,
// VXLAN), a veth with the tunnel's MTU, and the gateway bridge for its
// default route.
func TestPlanOverlay(t *testing.T) {
	f := &cluster.Fake{Nets: map[string]*store.Network{"ov0": overlayNet()},
		Eps: []cluster.Endpoint{{Host: "other", Network: "ov0", NetworkID: strings.Repeat("d", 64), IP: netip.MustParseAddr("10.0.0.2"), MAC: "02:42:0a:00:00:02"}}}
	p := clusterPlanner(t, f)
	out := p.plan(func() error { _, err := p.e.CreateNetwork(NetworkRequest{Name: "ov", Driver: "overlay"}); return err })
	has(t, out, "# in one transaction, if none of these keys exists yet:",
		"etcdctl --endpoints http://192.0.2.1:2379 put /minidocker-net/networks/ov ",
		"put /minidocker-net/vni/257 ", "put /minidocker-net/subnets/10.0.1.0-24 ")
	if strings.Contains(out, "ip ") {
		t.Errorf("creating an overlay network builds something on the host:\n%s", out)
	}

	out = p.plan(func() error { _, err := p.e.CreateSandbox(RunRequest{Name: "a", Network: "ov0"}); return err })
	has(t, out, "put /minidocker-net/endpoints/"+strings.Repeat("d", 64)+"/10.0.0.3 ",
		"ip netns add mdnov-dddddddddd",
		"ip -n mdnov-dddddddddd link add ov-000100-ddddd type bridge",
		"ip link add vx-000100-ddddd netns mdnov-dddddddddd type vxlan id 256 dstport 4789 nolearning proxy",
		"netns mdnov-dddddddddd mtu 1450 type veth peer name eth0 address 02:42:0a:00:00:03 mtu 1450 netns a",
		"ip link add mdn_gwbridge", "ip -n a route replace default via 172.19.0.1 dev eth1")
	if strings.Index(out, "etcdctl") > strings.Index(out, "ip netns add") {
		t.Errorf("the address is claimed after the kernel changed:\n%s", out)
	}
	if strings.Contains(out, "--lease") {
		t.Errorf("a dry run has no lease to print:\n%s", out)
	}
}

// TestPlanOverlayStoreDown: a store that does not answer stops a command
// that needs it, with its error, before anything is planned.
func TestPlanOverlayStoreDown(t *testing.T) {
	down := &cluster.UnreachableError{Store: "etcd://192.0.2.1:2379", Err: errors.New("context deadline exceeded")}
	p := clusterPlanner(t, &cluster.Fake{Err: down})
	for what, cmd := range map[string]func() error{
		"create": func() error { _, err := p.e.CreateNetwork(NetworkRequest{Name: "ov", Driver: "overlay"}); return err },
		"run":    func() error { _, err := p.e.CreateSandbox(RunRequest{Name: "a", Network: "ov0"}); return err },
	} {
		p.out.Reset()
		if err := cmd(); !errors.As(err, new(*cluster.UnreachableError)) || !strings.Contains(err.Error(), "does not answer") {
			t.Errorf("%s with the store down: %v", what, err)
		}
		if p.out.Len() > 0 {
			t.Errorf("%s printed a plan with the store down:\n%s", what, p.out)
		}
	}
	// A local network needs no store.
	p.plan(func() error { _, err := p.e.CreateNetwork(NetworkRequest{Name: "local"}); return err })
}

// TestEndpointChanges: the endpoints a command adds and removes on
// overlay networks, and none on local ones.
func TestEndpointChanges(t *testing.T) {
	old := store.NewState()
	old.Networks["ov0"] = overlayNet()
	old.Networks["n"] = &store.Network{ID: strings.Repeat("a", 64), Name: "n"}
	ep := func(id, network, ip string) *store.Endpoint {
		return &store.Endpoint{ID: id, Network: network, IP: netip.MustParseAddr(ip)}
	}
	old.Sandboxes["a"] = &store.Sandbox{Name: "a", ID: "aa", Endpoints: []*store.Endpoint{ep("1", "ov0", "10.0.0.2"), ep("2", "n", "172.18.0.2")}}
	old.Sandboxes["b"] = &store.Sandbox{Name: "b", ID: "bb", Endpoints: []*store.Endpoint{ep("3", "ov0", "10.0.0.3")}}
	new := old.Clone()
	delete(new.Sandboxes, "a")
	new.Sandboxes["c"] = &store.Sandbox{Name: "c", ID: "cc", Endpoints: []*store.Endpoint{ep("4", "ov0", "10.0.0.2"), ep("5", "n", "172.18.0.3")}}
	came, went := endpointChanges(old, new)
	if len(came) != 1 || came[0].ID != "4" || len(went) != 1 || went[0].ID != "1" {
		t.Errorf("came %+v went %+v", came, went)
	}
}
