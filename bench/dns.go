package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/minidocker-net/minidocker-net/nsnet"
)

// DNSResult is one embedded DNS's figures for one kind of name.
type DNSResult struct {
	What   string  `json:"what"`
	Tool   string  `json:"tool"`
	QPS    float64 `json:"qps"`    // dnsperf, 10 s
	P50    float64 `json:"p50_ms"` // one query at a time
	P99    float64 `json:"p99_ms"`
	RSSMiB float64 `json:"rss_mib"` // the resolver process (dockerd for Docker)
}

// upstream starts the bench host's nameserver (dnsmasq in a namespace:
// NAME.test is 192.0.2.99), so forwarded names are answered here.
func upstream() {
	must(`ip netns add upstream && ip link add up-dns type veth peer name dns0 netns upstream &&
ip addr add 192.0.2.1/24 dev up-dns && ip link set up-dns up &&
ip -n upstream addr add 192.0.2.53/24 dev dns0 && ip -n upstream link set dns0 up && ip -n upstream link set lo up &&
ip -n upstream route add default via 192.0.2.1 &&
ip netns exec upstream dnsmasq --no-resolv --no-hosts --address=/test/192.0.2.99 --listen-address=192.0.2.53 --bind-interfaces --pid-file=/run/upstream-dnsmasq.pid --user=root &&
echo 'nameserver 192.0.2.53' > /etc/resolv.conf`)
}

var qpsRE = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)

// dnsperf runs Debian's dnsperf in a namespace (nsenter -n -t PID) against
// 127.0.0.11 for 10 s and returns queries per second.
func dnsperfIn(pid int, names []string) float64 {
	f, err := os.CreateTemp("", "dnsperf-")
	if err != nil {
		return 0
	}
	defer os.Remove(f.Name())
	for _, n := range names {
		fmt.Fprintf(f, "%s A\n", n)
	}
	f.Close()
	out, err := exec.Command("nsenter", "-n", "-t", strconv.Itoa(pid), "dnsperf", "-s", "127.0.0.11", "-d", f.Name(), "-l", "10", "-c", "4", "-q", "64").CombinedOutput()
	if m := qpsRE.FindStringSubmatch(string(out)); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	fmt.Fprintf(os.Stderr, "bench: dnsperf: %v: %s\n", err, out)
	return 0
}

// latencies asks 127.0.0.11, one query at a time, from a process's
// namespace, and returns each answer's time in milliseconds.
func latencies(pid int, names []string, n int) []float64 {
	var ms []float64
	var c net.Conn
	err := nsnet.Within(fmt.Sprintf("/proc/%d/ns/net", pid), func() error {
		var err error
		c, err = net.Dial("udp", "127.0.0.11:53")
		return err
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: latency: %v\n", err)
		return nil
	}
	defer c.Close()
	conn := &dns.Conn{Conn: c}
	for i := 0; i < n; i++ {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(names[rand.IntN(len(names))]), dns.TypeA)
		start := time.Now()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if err := conn.WriteMsg(m); err != nil {
			continue
		}
		if _, err := conn.ReadMsg(); err != nil {
			continue
		}
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
	}
	return ms
}

// percentiles are p50 and p99 of samples, in their unit.
func percentiles(ms []float64) (float64, float64) {
	if len(ms) == 0 {
		return 0, 0
	}
	sort.Float64s(ms)
	return ms[len(ms)/2], ms[len(ms)*99/100]
}

// rssMiB reads a process's resident memory.
func rssMiB(pid int) float64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// Latency samples per tool and kind of name: 10 rounds of 1000.
const latencyRounds, latencyPerRound = 10, 1000

// dnsBench measures the embedded DNS of both tools, with the sandboxes
// and containers of the scaling part (sc1..scN on network "scale"): a
// known name and a forwarded one.
func dnsBench(res *Results, docker bool, n int) {
	known := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		known = append(known, fmt.Sprintf("sc%d", i))
	}
	forwarded := []string{"www.example.test", "api.example.test", "mail.example.test"}
	pidOf := func(cmd string) int {
		out, _ := sh("%s", cmd)
		p, _ := strconv.Atoi(strings.TrimSpace(out))
		return p
	}
	// Our sandboxes have no process: one that sleeps is the querier.
	m("exec", "-d", "sc1", "--", "sleep", "1d")
	time.Sleep(200 * time.Millisecond)
	ourPid := pidOf("ip netns pids sc1 | head -1")
	resolverPid := pidOf("pgrep -f '[_]_resolver' | head -1")
	var dockPid, dockerdPid int
	if docker {
		dockPid = pidOf("docker inspect -f '{{.State.Pid}}' sc1")
		dockerdPid = pidOf("pgrep -x dockerd | head -1")
	}
	for _, kind := range []struct {
		what  string
		names []string
	}{{"known name", known}, {"forwarded name", forwarded}} {
		// Latencies of both before either flood: a flood leaves the host
		// busy (conntrack entries of forwarded queries, the upstream's
		// backlog) for whoever is measured next.
		// In rounds that alternate between the two, so that the machine's
		// noise (other tenants, timers) falls on both alike: a p99 of one
		// block of queries measured after the other's is the noise's.
		var ourMs, theirMs []float64
		for round := 0; round < latencyRounds; round++ {
			ourMs = append(ourMs, latencies(ourPid, kind.names, latencyPerRound)...)
			if docker {
				theirMs = append(theirMs, latencies(dockPid, kind.names, latencyPerRound)...)
			}
		}
		ours := DNSResult{What: kind.what, Tool: "minidocker-net"}
		ours.P50, ours.P99 = percentiles(ourMs)
		theirs := DNSResult{What: kind.what, Tool: "docker"}
		theirs.P50, theirs.P99 = percentiles(theirMs)
		ours.QPS, ours.RSSMiB = dnsperfIn(ourPid, kind.names), rssMiB(resolverPid)
		res.DNS = append(res.DNS, ours)
		if docker {
			time.Sleep(2 * time.Second)
			theirs.QPS, theirs.RSSMiB = dnsperfIn(dockPid, kind.names), rssMiB(dockerdPid)
			res.DNS = append(res.DNS, theirs)
		}
		time.Sleep(2 * time.Second)
	}
	for _, r := range res.DNS {
		fmt.Printf("dns %-15s %-15s %9.0f q/s   p50 %6.3f ms   p99 %6.3f ms   rss %6.1f MiB\n", r.What, r.Tool, r.QPS, r.P50, r.P99, r.RSSMiB)
	}
}
