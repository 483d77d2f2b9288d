package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/hostns"
)

// OverlayResult is the overlay driver beside the bridge driver on one
// host, and the tunnel beside the hosts' own LAN path. Docker has no
// engine to compare with here: its overlay needs swarm mode, or (20.10,
// deprecated) a cluster store on etcd's v2 API.
type OverlayResult struct {
	Latency    []Pair `json:"latency"`
	Throughput []Pair `json:"throughput"`
	// Known: when host1's tunnel knew a sandbox run on host2, from run
	// -d's start, beside run -d's own time.
	Known Pair `json:"known"`
}

// Pair is one measurement of each side.
type Pair struct {
	What   string  `json:"what"`
	Ours   float64 `json:"overlay"`
	Beside float64 `json:"beside"` // the bridge driver's, or the LAN's
}

// overlay runs two hosts on one LAN and one etcd (throwaway hosts inside
// the benchmark's): create, run -d and connect on an overlay network
// against a bridge network (interleaved, medians), then iperf3 between
// sandboxes on the two hosts against the two hosts themselves.
func overlay(reps int) (*OverlayResult, error) {
	for _, tool := range []string{"etcd", "etcdctl", "iperf3"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("the overlay part needs %s: scripts/bench.sh installs it", tool)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	l, err := hostns.StartLAN(self, 2)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	h1, h2 := l.Nodes[0], l.Nodes[1]
	on := func(n *hostns.Node, args ...string) float64 {
		e := n.Enter()
		return timed(e[0], append(append(e[1:], *mdn), args...)...)
	}
	for _, n := range l.Nodes {
		on(n, "--cluster-store", hostns.ClusterStore, "--cluster-advertise", n.IP, "node", "ls")
	}
	res := &OverlayResult{}
	type op struct {
		what         string
		overlay, brg func(i int) float64
	}
	on(h1, "network", "create", "-d", "overlay", "ovl")
	on(h1, "network", "create", "brl")
	on(h1, "run", "-d", "--net", "ovl", "--name", "o-keep") // the network's part exists
	on(h1, "run", "-d", "--net", "brl", "--name", "b-keep")
	ops := []op{
		{"network create", func(i int) float64 {
			d := on(h1, "network", "create", "-d", "overlay", fmt.Sprintf("ov%d", i))
			on(h1, "network", "rm", fmt.Sprintf("ov%d", i))
			return d
		}, func(i int) float64 {
			d := on(h1, "network", "create", fmt.Sprintf("br%d", i))
			on(h1, "network", "rm", fmt.Sprintf("br%d", i))
			return d
		}},
		{"run -d (a sandbox on the network)", func(i int) float64 {
			d := on(h1, "run", "-d", "--net", "ovl", "--name", fmt.Sprintf("o%d", i))
			on(h1, "rm", "-f", fmt.Sprintf("o%d", i))
			return d
		}, func(i int) float64 {
			d := on(h1, "run", "-d", "--net", "brl", "--name", fmt.Sprintf("b%d", i))
			on(h1, "rm", "-f", fmt.Sprintf("b%d", i))
			return d
		}},
		{"network connect", func(i int) float64 {
			d := on(h1, "network", "connect", "ovl", "b-keep")
			on(h1, "network", "disconnect", "ovl", "b-keep")
			return d
		}, func(i int) float64 {
			d := on(h1, "network", "connect", "brl", "o-keep")
			on(h1, "network", "disconnect", "brl", "o-keep")
			return d
		}},
	}
	for _, o := range ops {
		var a, b []float64
		for i := range reps {
			a = append(a, o.overlay(i))
			b = append(b, o.brg(i))
		}
		res.Latency = append(res.Latency, Pair{What: o.what, Ours: median(a), Beside: median(b)})
	}
	// How soon another host's tunnel knows a new endpoint: host1 polls
	// its forwarding table (one dump every 2 ms or so) from before host2's
	// run -d starts, and notes when the entry appears, from run -d's start;
	// beside run -d's own time (the claim is its first step: the other
	// hosts learn the endpoint while it is being built).
	ns := strings.TrimSpace(mustIn(h1, *mdn+" network inspect -f '{{.MinidockerNet.Netns}}' ovl"))
	var lag, took []float64
	const mac = "02:42:0a:00:00:03" // the next free address's, 10.0.0.3, each time
	for i := range reps {
		name := fmt.Sprintf("p%d", i)
		// The last one's entry gone first.
		mustIn(h1, "for i in $(seq 2000); do bridge -n "+ns+" fdb show | grep -q '"+mac+" .*dst' || exit 0; done; exit 1")
		e := h1.Enter()
		watch := exec.Command(e[0], append(e[1:], "timeout", "10", "sh", "-c", "until bridge -n "+ns+" fdb show | grep -q '"+mac+" .*dst'; do :; done; date +%s%N")...)
		out := &strings.Builder{}
		watch.Stdout = out
		if err := watch.Start(); err != nil {
			return nil, err
		}
		started := time.Now()
		took = append(took, on(h2, "run", "-d", "--net", "ovl", "--name", name))
		if err := watch.Wait(); err != nil {
			return nil, fmt.Errorf("host1 did not see %s: %w", name, err)
		}
		seen, _ := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
		lag = append(lag, float64(time.Unix(0, seen).Sub(started).Microseconds())/1000)
		on(h2, "rm", "-f", name)
	}
	res.Known = Pair{What: "host1's tunnel knows a sandbox run on host2", Ours: median(lag), Beside: median(took)}
	// The data plane: sandbox to sandbox across the tunnel, against host
	// to host on the LAN.
	on(h2, "run", "-d", "--net", "ovl", "--name", "o-far")
	ip := strings.TrimSpace(mustIn(h2, "ip -n o-far -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"))
	serveIperf(append(h2.Enter(), "ip", "netns", "exec", "o-far"), 5201)
	serveIperf(h2.Enter(), 5999)
	var tun, lan []float64
	for range 3 {
		tun = append(tun, iperf(append(h1.Enter(), "ip", "netns", "exec", "o-keep"), ip, 5201))
		lan = append(lan, iperf(h1.Enter(), h2.IP, 5999))
	}
	res.Throughput = append(res.Throughput, Pair{What: "iperf3 TCP between two hosts (Gbit/s): sandbox to sandbox across the overlay, beside host to host on the LAN", Ours: median(tun), Beside: median(lan)})
	on(h1, "rm", "-f", "o-keep", "b-keep")
	on(h2, "rm", "-f", "o-far")
	on(h1, "network", "rm", "ovl", "brl")
	return res, nil
}

func mustIn(n *hostns.Node, script string) string {
	out, err := n.Sh(script)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s: %s: %v: %s\n", n.Name, script, err, out)
		os.Exit(1)
	}
	return out
}
