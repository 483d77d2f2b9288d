package demo

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/minidocker-net/minidocker-net/hostns"
)

const store = hostns.ClusterStore

// RunMultiHost is the overlay lesson: three hosts on one LAN and one
// etcd, the apple lesson across them on overlay networks, and everything
// removed again. It runs inside a throwaway host (the LAN).
func RunMultiHost(o Options) error {
	r := &runner{Options: o}
	// Commands are shown as a user types them: minidocker-net on PATH.
	if err := os.Setenv("PATH", filepath.Dir(o.Self)+string(os.PathListSeparator)+os.Getenv("PATH")); err != nil {
		return err
	}
	for _, tool := range []string{"etcd", "etcdctl", "nsenter", "ping", "ip", "bridge"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the multi-host lesson needs %s: run scripts/demo.sh, which installs it (etcd-server, etcd-client)", tool)
		}
	}
	if os.Getenv("MINIDOCKER_NET_THROWAWAY") != "1" {
		return fmt.Errorf("the multi-host lesson builds a LAN and runs etcd: it runs in a throwaway host only (minidocker-net demo --multi-host)")
	}
	l, err := r.lan()
	if err != nil {
		return err
	}
	defer l.Close()
	r.overlayLesson(l.Nodes)
	r.printf("\n%d checks passed, %d failed.\n", r.passed, len(r.failed))
	if len(r.failed) > 0 {
		return fmt.Errorf("%d lesson checks did not behave as Docker would: %s", len(r.failed), strings.Join(r.failed, "; "))
	}
	return nil
}

// lan builds the LAN, starts etcd on it and three hosts cabled to it.
func (r *runner) lan() (*hostns.LAN, error) {
	r.section("Three hosts, one LAN, one etcd",
		"Three throwaway hosts (each its own network, mount and PID namespaces, its own state) on one LAN,\n"+
			"192.168.77.0/24, and Debian's etcd at "+hostns.LANGateway+":2379: the cluster store Docker 1.9-1.12 took with\n"+
			"dockerd --cluster-store etcd://… --cluster-advertise IP.")
	l, err := hostns.StartLAN(r.Self, 3)
	if err != nil {
		return nil, err
	}
	for _, n := range l.Nodes {
		r.printf("   %s: eth0 %s on the LAN\n", n.Name, n.IP)
	}
	r.printf("   etcd answers at %s:2379\n", hostns.LANGateway)
	return l, nil
}

// on runs minidocker-net on one host, showing its primitives.
func (r *runner) on(n *hostns.Node, docker string, args ...string) (string, bool) {
	return r.doIn(n.Enter(), n.Name, docker, args...)
}

// sees runs a shell command on one host as a user would, and shows it;
// it returns the output and the exit status.
func (r *runner) sees(n *hostns.Node, what, shell string) (string, int) {
	r.printf("\n   %s\n   %s$ %s\n", what, n.Name, shell)
	cmd := exec.Command(n.Enter()[0], append(n.Enter()[1:], "sh", "-c", shell)...)
	out, err := cmd.CombinedOutput()
	if s := strings.TrimSpace(string(out)); s != "" {
		r.printf("%s\n", indent(s, "     "))
	}
	if err != nil && cmd.ProcessState == nil {
		return string(out), -1
	}
	return string(out), cmd.ProcessState.ExitCode()
}

func (r *runner) overlayLesson(nodes []*hostns.Node) {
	h1, h2, h3 := nodes[0], nodes[1], nodes[2]
	r.section("Join the cluster",
		"Each host is told the store and the address the others reach it at (remembered after this first\n"+
			"use). Its one long-running process, the embedded DNS, now also keeps the host's lease in etcd alive.")
	for _, n := range nodes {
		r.on(n, "dockerd --cluster-store "+store+" --cluster-advertise "+n.IP+":2376", "--cluster-store", store, "--cluster-advertise", n.IP, "node", "ls")
	}
	out, _ := r.sees(h1, "Every host is present, under its lease:", "minidocker-net node ls")
	r.check(strings.Count(out, "Ready") == 3, "node ls lists the three hosts")

	r.section("test-network and applesonly, across three hosts",
		"The apple lesson again, with each sandbox on another host: overlay networks are one L2 segment\n"+
			"across hosts, carried between them in VXLAN (UDP 4789). Their definitions, VNIs and addresses are\n"+
			"claimed in etcd by transactions; each host builds its part (a namespace with a bridge and a VXLAN\n"+
			"device) with its first sandbox on the network.")
	r.on(h1, "docker network create -d overlay test-network", "network", "create", "-d", "overlay", "test-network")
	r.on(h1, "docker network create -d overlay applesonly", "network", "create", "-d", "overlay", "applesonly")
	r.on(h1, "docker run -d --net test-network --name apple-server busybox sleep 1d", "run", "-d", "--net", "test-network", "--name", "apple-server")
	r.on(h2, "docker run -d --net test-network --name orange-server busybox sleep 1d", "run", "-d", "--net", "test-network", "--name", "orange-server")
	r.on(h1, "docker network connect applesonly apple-server", "network", "connect", "applesonly", "apple-server")
	r.on(h3, "docker run -d --net applesonly --name red-apple busybox sleep 1d", "run", "-d", "--net", "applesonly", "--name", "red-apple")
	_, code := r.sees(h3, "red-apple, on host3, pings apple-server, on host1, by name:", "minidocker-net exec red-apple -- ping -c1 -W2 apple-server")
	r.check(code == 0, "red-apple (host3) reaches apple-server (host1) by name")
	_, code = r.sees(h3, "…but not orange-server, on host2, which is on test-network only (the name does not resolve):", "minidocker-net exec red-apple -- ping -c1 -W1 orange-server")
	r.check(code == 2, "red-apple does not reach orange-server: no such name on its network")
	_, code = r.sees(h2, "orange-server, on host2, reaches apple-server on test-network:", "minidocker-net exec orange-server -- ping -c1 -W2 apple-server")
	r.check(code == 0, "orange-server (host2) reaches apple-server (host1) by name")
	out, _ = r.sees(h3, "How: the packet's way, told by the tunnel's own tables:", "minidocker-net trace red-apple apple-server")
	r.check(strings.Contains(out, "VTEP "+h1.IP), "trace names the VTEP of host1")
	r.sees(h1, "host1's part of test-network: a namespace with a bridge, the VXLAN device, and one static\n   neighbour and forwarding entry per remote endpoint (the cluster agent writes them from etcd):",
		"ns=$(minidocker-net network inspect -f '{{.MinidockerNet.Netns}}' test-network); ip -n $ns -br link; ip -n $ns neigh; bridge -n $ns fdb show | grep dst")
	out, _ = r.sees(h2, "Out of the cluster: by the gateway bridge (Docker's docker_gwbridge), masqueraded as the host:",
		"minidocker-net exec orange-server -- ip route")
	r.check(strings.Contains(out, "default via 172."), "an overlay sandbox's default route is the gateway bridge")
	r.sees(h1, "What etcd holds:", "etcdctl --endpoints http://"+hostns.LANGateway+":2379 get --prefix --keys-only /minidocker-net/ | grep .")

	r.section("Clean up", "Everything is removed again: every host as before, no key left in etcd.")
	r.on(h3, "", "rm", "-f", "red-apple")
	r.on(h2, "", "rm", "-f", "orange-server")
	r.on(h1, "", "rm", "-f", "apple-server")
	r.on(h1, "docker network rm test-network applesonly", "network", "rm", "test-network", "applesonly")
	for _, n := range nodes {
		r.on(n, "", "node", "leave")
	}
	keys, _ := exec.Command("etcdctl", "--endpoints", hostns.EtcdURL, "get", "--prefix", "--keys-only", "/minidocker-net/").Output()
	r.check(strings.TrimSpace(string(keys)) == "", "no key of ours is left in etcd")
	clean := true
	for _, n := range nodes {
		out, _ := exec.Command(n.Enter()[0], append(n.Enter()[1:], "sh", "-c", "ip -o link | grep ' mdn'; ls /var/run/netns 2>/dev/null")...).Output()
		clean = clean && strings.TrimSpace(string(out)) == ""
	}
	r.check(clean, "no mdn interface and no namespace is left on any host")
}
