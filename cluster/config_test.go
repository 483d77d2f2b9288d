package cluster

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	c, err := Parse("etcd://10.0.0.1:2379,etcd-2:2379", "192.168.56.11")
	if err != nil || strings.Join(c.Endpoints(), " ") != "http://10.0.0.1:2379 http://etcd-2:2379" || c.Advertise.String() != "192.168.56.11" {
		t.Errorf("parse: %+v %v", c, err)
	}
	if c, err := Parse("", ""); err != nil || c.Store != "" {
		t.Errorf("no cluster: %+v %v", c, err)
	}
	for _, bad := range [][2]string{
		{"", "10.0.0.1"},                       // advertise without a store
		{"consul://10.0.0.1:8500", "10.0.0.2"}, // not etcd
		{"etcd://10.0.0.1", "10.0.0.2"},        // no port
		{"etcd://10.0.0.1:2379/x", "10.0.0.2"}, // a path
		{"etcd://10.0.0.1:2379", ""},           // no advertise
		{"etcd://10.0.0.1:2379", "127.0.0.1"},  // loopback
		{"etcd://10.0.0.1:2379", "eth1:2376"},  // an interface (Docker took it; we take an address)
		{"etcd://10.0.0.1:2379", "fd00::1"},    // the underlay is IPv4
	} {
		if _, err := Parse(bad[0], bad[1]); err == nil {
			t.Errorf("accepted %q %q", bad[0], bad[1])
		}
	}
}

// TestClaimCommands: a claim prints as etcdctl puts (with the lease) and
// its undo as deletes in reverse; a release is the other way round.
func TestClaimCommands(t *testing.T) {
	c := &Claim{Store: "etcd://10.0.0.1:2379", Lease: 0x694d, KVs: []KV{{Key: "/k1", Value: `{"a":1}`}, {Key: "/k2", Value: "v"}}}
	got := strings.Join(c.Commands(), "\n")
	want := "# in one transaction, if none of these keys exists yet:\netcdctl --endpoints http://10.0.0.1:2379 put /k1 '{\"a\":1}' --lease=694d\netcdctl --endpoints http://10.0.0.1:2379 put /k2 v --lease=694d"
	if got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	if u := c.UndoCommands(); len(u) != 2 || !strings.HasSuffix(u[0], " del /k2") {
		t.Errorf("undo: %q", u)
	}
	r := &Release{Claim: *c}
	if strings.Join(r.Commands(), "\n") != strings.Join(c.UndoCommands(), "\n") {
		t.Errorf("release: %q", r.Commands())
	}
}
