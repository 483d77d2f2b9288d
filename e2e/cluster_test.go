package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Cluster is a multi-host set-up: a parent throwaway host holding the LAN
// (a bridge, 192.168.77.1) and etcd on it, and throwaway hosts cabled to
// that LAN by a veth each (eth0, 192.168.77.11, .12, ...), each with its
// own network, mount, PID and UTS namespaces and its own state.
type Cluster struct {
	t      *testing.T
	LAN    *Host
	Hosts  []*Host
	IPs    []string
	Store  string // etcd://192.168.77.1:2379
	etcdOn bool
}

const lanGateway = "192.168.77.1"

// NewCluster starts the LAN, etcd (Debian's etcd-server, on the LAN
// address with a data directory in the parent's private /run) and n hosts
// on it. The hosts have not joined: Join does.
func NewCluster(t *testing.T, n int) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Fatalf("the multi-host tests need etcd: run scripts/test.sh, which installs etcd-server")
	}
	c := &Cluster{t: t, LAN: NewHost(t), Store: "etcd://" + lanGateway + ":2379"}
	c.LAN.MustSh(`ip link add lan0 type bridge && ip addr add ` + lanGateway + `/24 dev lan0 && ip link set lan0 up && mkdir -p /run/etcd`)
	c.StartEtcd()
	for i := range n {
		h := NewHost(t)
		ip := fmt.Sprintf("192.168.77.%d", 11+i)
		// The cable: made in the LAN's namespace, one end moved into the
		// host's (by its pid on this machine).
		cable := exec.Command("nsenter", "--net=/proc/"+fmt.Sprint(c.LAN.pid)+"/ns/net", "ip", "link", "add", fmt.Sprintf("lan%d", i+1), "type", "veth", "peer", "name", "eth0", "netns", fmt.Sprint(h.pid))
		if out, err := cable.CombinedOutput(); err != nil {
			t.Fatalf("cable host %d: %v %s", i+1, err, out)
		}
		c.LAN.MustSh(fmt.Sprintf("ip link set lan%d master lan0 up", i+1))
		h.MustSh(fmt.Sprintf("hostname host%d && ip addr add %s/24 dev eth0 && ip link set eth0 up && ip route add default via %s && sysctl -qw net.ipv4.ip_forward=0", i+1, ip, lanGateway))
		c.Hosts = append(c.Hosts, h)
		c.IPs = append(c.IPs, ip)
	}
	return c
}

// StartEtcd starts etcd in the LAN's namespace and waits until it answers.
func (c *Cluster) StartEtcd() {
	c.t.Helper()
	c.LAN.MustSh(`setsid etcd --name lan --data-dir /run/etcd/data --listen-client-urls http://` + lanGateway + `:2379 --advertise-client-urls http://` + lanGateway + `:2379 --listen-peer-urls http://127.0.0.1:2380 --log-level error >>/run/etcd/log 2>&1 </dev/null &`)
	deadline := time.Now().Add(15 * time.Second)
	for c.LAN.Sh(c.etcdctl("endpoint health")).Code != 0 {
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd did not start: %s", c.LAN.Sh("cat /run/etcd/log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.etcdOn = true
}

// StopEtcd kills etcd (as a crash would).
func (c *Cluster) StopEtcd() {
	c.t.Helper()
	c.LAN.MustSh(`pkill -KILL -x etcd; for i in $(seq 100); do pgrep -x etcd >/dev/null || exit 0; sleep 0.05; done; exit 1`)
	c.etcdOn = false
}

func (c *Cluster) etcdctl(args string) string {
	return "ETCDCTL_API=3 etcdctl --endpoints http://" + lanGateway + ":2379 " + args
}

// Keys are the keys of ours in etcd.
func (c *Cluster) Keys() string {
	c.t.Helper()
	return strings.TrimSpace(c.LAN.MustSh(c.etcdctl("get --prefix --keys-only /minidocker-net/")))
}

// Join makes every host join the cluster.
func (c *Cluster) Join() {
	c.t.Helper()
	for i, h := range c.Hosts {
		h.MustMDN("--cluster-store", c.Store, "--cluster-advertise", c.IPs[i], "node", "ls")
	}
}

// Kill ends a host at once, every process in its namespaces with it (its
// cable goes too), as a crash or a pulled plug would.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	h := c.Hosts[i]
	_ = h.init.Process.Kill()
	_, _ = h.init.Process.Wait()
	// Its processes die with its first one; the kernel frees the rest.
	for j := 0; j < 100; j++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", h.pid)); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Eventually retries a check until it holds or the time is up.
func Eventually(t *testing.T, within time.Duration, what string, check func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !check() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start)
}
