package hostns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The LAN of a multi-host set-up: the throwaway host the caller runs in
// holds its bridge and etcd; the hosts are throwaway hosts inside it.
const (
	LANPrefix  = "192.168.77."
	LANGateway = LANPrefix + "1"
	EtcdURL    = "http://" + LANGateway + ":2379"
	// ClusterStore is the store as minidocker-net's --cluster-store.
	ClusterStore = "etcd://" + LANGateway + ":2379"
)

// Node is one host on the LAN.
type Node struct {
	Name string // host1, host2, ...
	IP   string // 192.168.77.11, ...
	Pid  int
	in   io.WriteCloser
	cmd  *exec.Cmd
}

// Enter is the command prefix that runs a program inside the node, with
// minidocker-net's state directory there.
func (n *Node) Enter() []string {
	return []string{"nsenter", "--target", fmt.Sprint(n.Pid), "--net", "--mount", "--pid", "--uts", "--",
		"env", "MINIDOCKER_NET_STATE_DIR=" + StateDir}
}

// Sh runs a shell command inside the node.
func (n *Node) Sh(script string) (string, error) {
	e := n.Enter()
	out, err := exec.Command(e[0], append(e[1:], "sh", "-c", script)...).CombinedOutput()
	return string(out), err
}

// Close ends the node and everything in it.
func (n *Node) Close() error {
	n.in.Close()
	return n.cmd.Wait()
}

// LAN is a bridge (lan0, 192.168.77.1/24), Debian's etcd on it, and the
// nodes cabled to it by a veth each (eth0, 192.168.77.11, .12, ...).
type LAN struct {
	Nodes []*Node
}

// StartLAN builds the LAN in the current throwaway host (it refuses to
// run anywhere else) and starts n nodes; self is a binary that runs
// InitCommand (this program).
func StartLAN(self string, n int) (*LAN, error) {
	if os.Getenv("MINIDOCKER_NET_THROWAWAY") != "1" && os.Getpid() != 1 {
		return nil, errors.New("a LAN of hosts is built in a throwaway host only")
	}
	// The LAN is a switch, not a firewall: with br_netfilter loaded, its
	// bridged frames would meet the FORWARD chain of the host that holds
	// it, whose policy is DROP once Docker (the benchmark's) or a network
	// of ours runs there.
	setup := "ip link add lan0 type bridge && ip addr add " + LANGateway + "/24 dev lan0 && ip link set lan0 up && " +
		"iptables -I FORWARD -i lan0 -o lan0 -j ACCEPT && mkdir -p /run/etcd && " +
		"(setsid etcd --name lan --data-dir /run/etcd/data --listen-client-urls " + EtcdURL + " --advertise-client-urls " + EtcdURL + " " +
		"--listen-peer-urls http://127.0.0.1:2380 --log-level error >/run/etcd/log 2>&1 </dev/null &)"
	if out, err := exec.Command("sh", "-c", setup).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("the LAN: %v: %s", err, out)
	}
	l := &LAN{}
	for i := 1; i <= n; i++ {
		node, err := l.start(self, i)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.Nodes = append(l.Nodes, node)
	}
	for t := 0; exec.Command("etcdctl", "--endpoints", EtcdURL, "endpoint", "health").Run() != nil; t++ {
		if t > 150 {
			log, _ := os.ReadFile("/run/etcd/log")
			l.Close()
			return nil, fmt.Errorf("etcd did not start: %s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return l, nil
}

func (l *LAN) start(self string, i int) (*Node, error) {
	cmd := Command(self)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start host%d: %w", i, err)
	}
	n := &Node{Name: fmt.Sprintf("host%d", i), IP: fmt.Sprintf("%s%d", LANPrefix, 10+i), Pid: cmd.Process.Pid, in: in, cmd: cmd}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		n.Close()
		return nil, fmt.Errorf("host%d did not start: %q %v", i, line, err)
	}
	cable := fmt.Sprintf("ip link add lan%d type veth peer name eth0 netns %d && ip link set lan%d master lan0 up", i, n.Pid, i)
	if out, err := exec.Command("sh", "-c", cable).CombinedOutput(); err != nil {
		n.Close()
		return nil, fmt.Errorf("cable %s: %v: %s", n.Name, err, out)
	}
	inside := fmt.Sprintf("hostname %s && ip addr add %s/24 dev eth0 && ip link set eth0 up && ip route add default via %s", n.Name, n.IP, LANGateway)
	if out, err := n.Sh(inside); err != nil {
		n.Close()
		return nil, fmt.Errorf("set up %s: %v: %s", n.Name, err, out)
	}
	return n, nil
}

// Close ends every node (etcd ends with the throwaway host).
func (l *LAN) Close() {
	for _, n := range l.Nodes {
		_ = n.Close()
	}
}
