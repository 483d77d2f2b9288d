// Command bench measures minidocker-net, side by side with Docker when a
// Docker engine is installed: command latency (medians, the two tools
// interleaved in one run), scaling to 250 sandboxes, 50 networks and 1000
// published ports, data-plane throughput with iperf3 on every published
// path, and what stays running. Everything happens in a throwaway host
// (Docker's engine included), so the machine is left as it was.
//
//	bench -mdn bin/minidocker-net -out bench-results [-docker] [-quick]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/dockerhost"
	"github.com/minidocker-net/minidocker-net/hostns"
)

var (
	mdn      = flag.String("mdn", "bin/minidocker-net", "the minidocker-net binary")
	out      = flag.String("out", "bench-results", "directory for results.json, report.md and scaling.png")
	withDock = flag.Bool("docker", true, "also measure Docker when dockerd is installed")
	quick    = flag.Bool("quick", false, "fewer repetitions and a smaller scale (a smoke run)")
	inside   = flag.Bool("inside", false, "internal: already in the throwaway host")
	parts    = flag.String("parts", "latency,throughput,resources,scaling,dns,overlay,backends", "which measurements to run (dns needs scaling's sandboxes)")
	before   = flag.String("before", "", "another minidocker-net binary (the code before a change) to measure beside, in the same interleaved run")
)

func want(part string) bool { return strings.Contains(","+*parts+",", ","+part+",") }

func main() {
	if len(os.Args) > 1 && os.Args[1] == hostns.InitCommand {
		os.Exit(hostns.Init(os.Args[2:]))
	}
	flag.Parse()
	if !*inside {
		os.Exit(relaunch())
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// relaunch runs this program again as the first process of a throwaway host.
func relaunch() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	args := []string{self, "-inside", "-mdn", abs(*mdn), "-out", abs(*out), fmt.Sprintf("-docker=%v", *withDock), fmt.Sprintf("-quick=%v", *quick), "-parts", *parts}
	if *before != "" {
		args = append(args, "-before", abs(*before))
	}
	cmd := hostns.Command(self, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// Results is everything measured in one run.
type Results struct {
	When      string             `json:"when"`
	Machine   map[string]string  `json:"machine"`
	Latency   []Latency          `json:"latency"`
	Scaling   map[string][]Point `json:"scaling"`
	Transfer  []Throughput       `json:"throughput"`
	Resources []Resource         `json:"resources"`
	DNS       []DNSResult        `json:"dns"`
	Overlay   *OverlayResult     `json:"overlay,omitempty"`
	Backends  *Backends          `json:"backends,omitempty"`
	Notes     []string           `json:"notes"`
}

// Latency is the median of repeated runs of one operation.
type Latency struct {
	Op     string  `json:"op"`
	Ours   float64 `json:"ours_ms"`
	Docker float64 `json:"docker_ms,omitempty"`
	Before float64 `json:"before_ms,omitempty"` // -before's binary
}

// Point is one measurement of a scaling curve.
type Point struct {
	N  int     `json:"n"`
	Ms float64 `json:"ms"`
}

// Throughput is one iperf3 path.
type Throughput struct {
	Path   string  `json:"path"`
	Ours   float64 `json:"ours_gbps"`
	Docker float64 `json:"docker_gbps,omitempty"`
}

// Resource is what keeps running after publishing ports.
type Resource struct {
	What   string `json:"what"`
	Ours   string `json:"ours"`
	Docker string `json:"docker,omitempty"`
}

func sh(format string, a ...any) (string, error) {
	out, err := exec.Command("sh", "-c", fmt.Sprintf(format, a...)).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", fmt.Sprintf(format, a...), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func must(format string, a ...any) string {
	o, err := sh(format, a...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	return o
}

// timed runs a command and returns its wall time in milliseconds.
func timed(name string, args ...string) float64 {
	start := time.Now()
	out, err := exec.Command(name, args...).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s %s: %v: %s\n", name, strings.Join(args, " "), err, out)
		os.Exit(1)
	}
	return float64(d.Microseconds()) / 1000
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func m(args ...string) float64 { return timed(*mdn, args...) }

// b runs the -before binary with a state directory of its own.
func b(args ...string) float64 {
	return timed(*before, append([]string{"--state-dir", "/run/mdn-before"}, args...)...)
}
func d(args ...string) float64 { return timed("docker", args...) }

func run() error {
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	res := &Results{When: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Scaling: map[string][]Point{}}
	if want("dns") {
		upstream() // before Docker, whose containers take the host's resolv.conf
	}
	docker := *withDock && startDocker(res)
	// The host's LAN: a client namespace reaching the host at 203.0.113.1.
	must(`ip netns add client && ip link add up0 type veth peer name c0 netns client &&
ip addr add 203.0.113.1/24 dev up0 && ip link set up0 up &&
ip -n client addr add 203.0.113.2/24 dev c0 && ip -n client link set c0 up && ip -n client link set lo up`)

	reps := 11
	if *quick {
		reps = 3
	}
	if want("latency") {
		fmt.Println("== latency (median of", reps, "interleaved runs)")
		res.Latency = latency(reps, docker)
		for _, l := range res.Latency {
			fmt.Printf("%-32s ours %8.1f ms   docker %8.1f ms   before %8.1f ms\n", l.Op, l.Ours, l.Docker, l.Before)
		}
	}
	if want("throughput") {
		fmt.Println("== data plane (iperf3, TCP)")
		res.Transfer = throughput(docker)
		for _, t := range res.Transfer {
			fmt.Printf("%-52s ours %6.1f Gbit/s   docker %6.1f Gbit/s\n", t.Path, t.Ours, t.Docker)
		}
	}
	if want("resources") {
		fmt.Println("== what runs after publishing 1000 ports")
		res.Resources = resources(docker)
		for _, r := range res.Resources {
			fmt.Printf("%-40s ours: %s   docker: %s\n", r.What, r.Ours, r.Docker)
		}
	}
	if want("scaling") {
		fmt.Println("== scaling")
		n := scaling(res, docker)
		if want("dns") {
			fmt.Println("== the embedded DNS, with the scaling part's sandboxes")
			dnsBench(res, docker, n)
		}
	}
	if want("overlay") {
		fmt.Println("== overlay networks: two hosts on one LAN and one etcd")
		o, err := overlay(reps)
		if err != nil {
			return err
		}
		res.Overlay = o
		for _, p := range o.Latency {
			fmt.Printf("%-36s overlay %7.1f ms   bridge %7.1f ms\n", p.What, p.Ours, p.Beside)
		}
		for _, p := range o.Throughput {
			fmt.Printf("%s: %.1f beside %.1f\n", p.What, p.Ours, p.Beside)
		}
		fmt.Printf("%s: %.1f ms after run -d started (run -d: %.1f ms)\n", o.Known.What, o.Known.Ours, o.Known.Beside)
	}
	if want("backends") {
		fmt.Println("== the iptables and nftables firewall backends, side by side")
		res.Backends = backends(reps)
		for _, l := range res.Backends.Latency {
			fmt.Printf("%-40s iptables %8.1f ms   nftables %8.1f ms\n", l.Op, l.IPTables, l.NFTables)
		}
		fmt.Printf("one more port (nftables): %.1f ms on an empty host, %.1f ms beside 10,000\n", res.Backends.OneMore[0], res.Backends.OneMore[1])
	}
	if err := write(res); err != nil {
		return err
	}
	fmt.Println("results in", *out)
	return nil
}

func machine() map[string]string {
	m := map[string]string{}
	k, _ := sh("uname -r")
	m["kernel"] = strings.TrimSpace(k)
	c, _ := sh("nproc")
	m["cpus"] = strings.TrimSpace(c)
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m["cpu"] = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	ipt, _ := sh("iptables --version")
	m["iptables"] = strings.TrimSpace(ipt)
	v, _ := sh("%s --version", *mdn)
	m["minidocker-net"] = strings.TrimSpace(v)
	if dv, err := sh("docker version --format '{{.Server.Version}}' 2>/dev/null"); err == nil {
		m["docker"] = strings.TrimSpace(dv)
	}
	return m
}

// startDocker runs Docker's engine inside the throwaway host.
func startDocker(res *Results) bool {
	e, err := dockerhost.Start()
	if err != nil {
		res.Notes = append(res.Notes, "Docker not measured: "+err.Error())
		return false
	}
	res.Machine["docker"] = e.Version + " (engine in the same throwaway host, default userland proxy)"
	return true
}

func ports(n, base int, prefix string) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, prefix, fmt.Sprintf("%d:%d", base+i, base+i))
	}
	return out
}

func latency(reps int, docker bool) []Latency {
	// ours runs with one of our binaries: the one measured (m, names as
	// they are) or the one before (b, names prefixed so that both can
	// share the host's namespaces).
	type tool struct {
		run func(args ...string) float64
		pre string
	}
	type op struct {
		name   string
		ours   func(t tool, i int) float64
		docker func(i int) float64
	}
	tools := []tool{{m, ""}}
	if *before != "" {
		tools = append(tools, tool{b, "b"})
	}
	// Warm both up: the first network sets the host up, the first run of
	// Docker's default network creates docker0.
	for _, t := range tools {
		t.run("network", "create", t.pre+"warm")
		t.run("run", "-d", "--net", t.pre+"warm", "--name", t.pre+"warm")
	}
	if docker {
		d("network", "create", "warm")
		d("run", "-d", "--net", "warm", "--name", "warm", dockerhost.Image, "sleep", "1d")
	}
	ops := []op{
		{"network create", func(t tool, i int) float64 { return t.run("network", "create", t.pre+fmt.Sprintf("n%d", i)) },
			func(i int) float64 { return d("network", "create", fmt.Sprintf("n%d", i)) }},
		{"run -d (sandbox, no process)", func(t tool, i int) float64 {
			return t.run("run", "-d", "--net", t.pre+"warm", "--name", t.pre+fmt.Sprintf("s%d", i))
		},
			func(i int) float64 {
				return d("run", "-d", "--net", "warm", "--name", fmt.Sprintf("s%d", i), dockerhost.Image, "sleep", "1d")
			}},
		{"network connect", func(t tool, i int) float64 {
			return t.run("network", "connect", t.pre+fmt.Sprintf("n%d", i), t.pre+fmt.Sprintf("s%d", i))
		},
			func(i int) float64 { return d("network", "connect", fmt.Sprintf("n%d", i), fmt.Sprintf("s%d", i)) }},
		{"network disconnect", func(t tool, i int) float64 {
			return t.run("network", "disconnect", t.pre+fmt.Sprintf("n%d", i), t.pre+fmt.Sprintf("s%d", i))
		},
			func(i int) float64 { return d("network", "disconnect", fmt.Sprintf("n%d", i), fmt.Sprintf("s%d", i)) }},
		{"rm", func(t tool, i int) float64 { return t.run("rm", "-f", t.pre+fmt.Sprintf("s%d", i)) },
			func(i int) float64 { return d("rm", "-f", fmt.Sprintf("s%d", i)) }},
		{"network rm", func(t tool, i int) float64 { return t.run("network", "rm", t.pre+fmt.Sprintf("n%d", i)) },
			func(i int) float64 { return d("network", "rm", fmt.Sprintf("n%d", i)) }},
	}
	for _, n := range []int{1, 10, 1000} {
		n := n
		base := 20000
		ops = append(ops, op{fmt.Sprintf("run -d publishing %d port(s)", n),
			func(t tool, i int) float64 {
				base := base
				if t.pre != "" {
					base += 5000 // ports of their own
				}
				return t.run(append([]string{"run", "-d", "--net", t.pre + "warm", "--name", t.pre + fmt.Sprintf("p%d-%d", n, i)}, ports(n, base, "-p")...)...)
			},
			func(i int) float64 {
				return d(append(append([]string{"run", "-d", "--net", "warm", "--name", fmt.Sprintf("p%d-%d", n, i)}, ports(n, base, "-p")...), dockerhost.Image, "sleep", "1d")...)
			}})
		ops = append(ops, op{fmt.Sprintf("rm with %d published port(s)", n),
			func(t tool, i int) float64 { return t.run("rm", "-f", t.pre+fmt.Sprintf("p%d-%d", n, i)) },
			func(i int) float64 { return d("rm", "-f", fmt.Sprintf("p%d-%d", n, i)) }})
	}
	var out []Latency
	runs := map[string][3][]float64{}
	// Interleave: each repetition runs every operation with each tool, so
	// all see the same machine noise. Our two binaries share the host's
	// chains, so each runs its whole sequence in turn (which goes first
	// alternates): neither meets the other's thousand published ports.
	for i := 0; i < reps; i++ {
		for k := range tools {
			t := tools[(k+i)%len(tools)]
			col := 0
			if t.pre != "" {
				col = 2
			}
			for _, o := range ops {
				if strings.Contains(o.name, "1000") && i >= 3 {
					continue // three runs are enough
				}
				r := runs[o.name]
				r[col] = append(r[col], o.ours(t, i))
				runs[o.name] = r
			}
		}
		for _, o := range ops {
			if docker && (!strings.Contains(o.name, "1000") || i == 0) {
				r := runs[o.name]
				r[1] = append(r[1], o.docker(i)) // Docker takes about two minutes for one
				runs[o.name] = r
			}
		}
	}
	for _, o := range ops {
		out = append(out, Latency{Op: o.name, Ours: median(runs[o.name][0]), Docker: median(runs[o.name][1]), Before: median(runs[o.name][2])})
	}
	for _, t := range tools {
		t.run("rm", "-f", t.pre+"warm")
		t.run("network", "rm", t.pre+"warm")
	}
	if docker {
		d("rm", "-f", "warm")
		d("network", "rm", "warm")
	}
	return out
}

// iperf runs a 3-second TCP transfer from a place to an address and
// returns Gbit/s received.
func iperf(client []string, addr string, port int) float64 {
	args := append(append([]string{}, client...), "iperf3", "-c", addr, "-p", strconv.Itoa(port), "-t", "3", "-J", "--connect-timeout", "3000")
	o, err := exec.Command(args[0], args[1:]...).Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: iperf3 to %s:%d from %v: %v\n", addr, port, client, err)
		return 0
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(o, &r); err != nil {
		return 0
	}
	return r.End.SumReceived.BitsPerSecond / 1e9
}

// serveIperf starts an iperf3 server inside a network namespace (given as
// a command prefix that enters it) and waits until it listens.
func serveIperf(enter []string, port int) {
	run := func(args ...string) {
		full := append(append([]string{}, enter...), args...)
		if out, err := exec.Command(full[0], full[1:]...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v: %v: %s\n", full, err, out)
			os.Exit(1)
		}
	}
	run("iperf3", "-s", "-D", "-p", strconv.Itoa(port))
	run("sh", "-c", fmt.Sprintf("for i in $(seq 100); do ss -Hltn | grep -q ':%d ' && exit 0; sleep 0.05; done; exit 1", port))
}

func throughput(docker bool) []Throughput {
	if _, err := exec.LookPath("iperf3"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: the data plane is not measured: iperf3 is not installed (scripts/bench.sh installs it)")
		return nil
	}
	host := []string{}
	client := []string{"ip", "netns", "exec", "client"}
	m("network", "create", "tp")
	m("run", "-d", "--net", "tp", "--name", "tp-server", "-p", "15201:5201")
	m("run", "-d", "--net", "tp", "--name", "tp-client")
	serveIperf([]string{"ip", "netns", "exec", "tp-server"}, 5201)
	ourIP := strings.TrimSpace(must("%s inspect tp-server --format x 2>/dev/null | true; ip -n tp-server -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1", *mdn))
	ourGW := strings.TrimSpace(must("ip -n tp-server route show default | awk '{print $3}'"))
	serveIperf(host, 5999) // on the host itself: loopback, and the baseline for another host
	var dockerIP, dockerGW string
	var dockerEnter []string
	if docker {
		d("network", "create", "tp")
		d("run", "-d", "--net", "tp", "--name", "tp-server", "-p", "25201:5201", dockerhost.Image, "sleep", "1d")
		d("run", "-d", "--net", "tp", "--name", "tp-client", dockerhost.Image, "sleep", "1d")
		pid := strings.TrimSpace(must("docker inspect -f '{{.State.Pid}}' tp-server"))
		dockerEnter = []string{"nsenter", "-t", pid, "-n"}
		serveIperf(dockerEnter, 5201)
		dockerIP = strings.TrimSpace(must("docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' tp-server"))
		dockerGW = strings.TrimSpace(must("docker inspect -f '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}' tp-server"))
	}
	cpid := ""
	if docker {
		cpid = strings.TrimSpace(must("docker inspect -f '{{.State.Pid}}' tp-client"))
	}
	// Each published path is compared with the direct path from the same
	// place, so both cross the same links and only the NAT differs.
	sandbox := []string{"ip", "netns", "exec", "tp-client"}
	dsandbox := []string{"nsenter", "-t", cpid, "-n"}
	type path struct {
		name                 string
		oursFrom, dockerFrom []string
		oursAddr, dockerAddr string
		oursPort, dockerPort int
	}
	paths := []path{
		{"host: loopback, no sandbox (the ceiling)", host, host, "127.0.0.1", "127.0.0.1", 5999, 5999},
		{"host: direct to the sandbox's address", host, host, ourIP, dockerIP, 5201, 5201},
		{"host: published, via 127.0.0.1", host, host, "127.0.0.1", "127.0.0.1", 15201, 25201},
		{"host: published, via its own address", host, host, "203.0.113.1", "203.0.113.1", 15201, 25201},
		{"another host: a service on the host itself", client, client, "203.0.113.1", "203.0.113.1", 5999, 5999},
		{"another host: published, via the host's address", client, client, "203.0.113.1", "203.0.113.1", 15201, 25201},
		{"sandbox: direct to its neighbour's address", sandbox, dsandbox, ourIP, dockerIP, 5201, 5201},
		{"sandbox: published, hairpin via gateway:port", sandbox, dsandbox, ourGW, dockerGW, 15201, 25201},
	}
	var out []Throughput
	for _, p := range paths {
		// Median of three, interleaved with Docker's same path.
		var ours, theirs []float64
		for i := 0; i < 3; i++ {
			ours = append(ours, iperf(p.oursFrom, p.oursAddr, p.oursPort))
			if docker {
				theirs = append(theirs, iperf(p.dockerFrom, p.dockerAddr, p.dockerPort))
			}
		}
		out = append(out, Throughput{Path: p.name, Ours: median(ours), Docker: median(theirs)})
	}
	m("rm", "-f", "tp-server", "tp-client")
	m("network", "rm", "tp")
	if docker {
		d("rm", "-f", "tp-server", "tp-client")
		d("network", "rm", "tp")
	}
	_, _ = sh("pkill iperf3")
	return out
}

// procStats counts the processes running an executable, and their memory.
func procStats(exe string) (int, int) {
	entries, _ := os.ReadDir("/proc")
	n, rss := 0, 0
	for _, e := range entries {
		pid := e.Name()
		if target, err := os.Readlink("/proc/" + pid + "/exe"); err != nil || filepath.Base(target) != exe {
			continue
		}
		b, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			continue
		}
		n++
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.Atoi(f[1])
				rss += kb
			}
		}
	}
	return n, rss
}

// resourcePorts is below the ephemeral range (32768-60999): there, the
// local port of any connection on the host made docker-proxy's bind fail
// ("address already in use") in one run.
const resourcePorts = 11000

func resources(docker bool) []Resource {
	m("network", "create", "res")
	m(append([]string{"run", "-d", "--net", "res", "--name", "res"}, ports(1000, resourcePorts, "-p")...)...)
	n, rss := procStats(filepath.Base(*mdn))
	r := []Resource{{What: "processes after publishing 1000 ports", Ours: fmt.Sprint(n)}, {What: "their memory (RSS)", Ours: fmt.Sprintf("%d MiB", rss/1024)}}
	if docker {
		d(append(append([]string{"run", "-d", "--name", "res"}, ports(1000, resourcePorts, "-p")...), dockerhost.Image, "sleep", "1d")...)
		dn, drss := procStats("docker-proxy")
		r[0].Docker = fmt.Sprintf("%d docker-proxy", dn)
		r[1].Docker = fmt.Sprintf("%d MiB", drss/1024)
		d("rm", "-f", "res")
	}
	rules := strings.Count(must("iptables-save"), "\n-A ")
	r = append(r, Resource{What: "iptables rules on the host (both tools)", Ours: fmt.Sprint(rules)})
	m("rm", "-f", "res")
	m("network", "rm", "res")
	return r
}

// scaling returns how many sandboxes (and containers) it left on the
// network "scale".
func scaling(res *Results, docker bool) int {
	nSb, nNet, nPorts := 250, 50, 1000
	if *quick {
		nSb, nNet, nPorts = 40, 10, 100
	}
	m("network", "create", "scale")
	var sb []Point
	for i := 1; i <= nSb; i++ {
		sb = append(sb, Point{i, m("run", "-d", "--net", "scale", "--name", fmt.Sprintf("sc%d", i))})
	}
	res.Scaling["ours: run -d, by sandboxes on the network"] = sb
	var nets []Point
	for i := 1; i <= nNet; i++ {
		// Explicit subnets: the predefined pools hold 31 networks, on Docker too.
		nets = append(nets, Point{i, m("network", "create", "--subnet", fmt.Sprintf("10.100.%d.0/24", i), fmt.Sprintf("sn%d", i))})
	}
	res.Scaling["ours: network create, by networks"] = nets
	var ps []Point
	for i := 1; i <= nPorts; i++ {
		ps = append(ps, Point{i, m("expose", "sc1", strconv.Itoa(30000+i))})
	}
	res.Scaling["ours: expose one port, by published ports"] = ps
	fmt.Printf("ours: run -d %.1f ms at 1 sandbox, %.1f ms at %d; network create %.1f ms at 1, %.1f ms at %d; expose %.1f ms at 1, %.1f ms at %d\n",
		sb[0].Ms, sb[len(sb)-1].Ms, nSb, nets[0].Ms, nets[len(nets)-1].Ms, nNet, ps[0].Ms, ps[len(ps)-1].Ms, nPorts)
	scalingNFT(res, nSb, nNet, nPorts)
	if !docker {
		return nSb
	}
	d("network", "create", "scale")
	var dsb []Point
	step := 5
	for i := 1; i <= nSb; i++ {
		t := d("run", "-d", "--net", "scale", "--name", fmt.Sprintf("sc%d", i), dockerhost.Image, "sleep", "1d")
		if i == 1 || i%step == 0 {
			dsb = append(dsb, Point{i, t})
		}
	}
	res.Scaling["docker: run -d, by containers on the network"] = dsb
	var dnets []Point
	for i := 1; i <= nNet; i++ {
		dnets = append(dnets, Point{i, d("network", "create", "--subnet", fmt.Sprintf("10.101.%d.0/24", i), fmt.Sprintf("sn%d", i))})
	}
	res.Scaling["docker: network create, by networks"] = dnets
	fmt.Printf("docker: run -d %.1f ms at 1 container, %.1f ms at %d; network create %.1f ms at 1, %.1f ms at %d\n",
		dsb[0].Ms, dsb[len(dsb)-1].Ms, nSb, dnets[0].Ms, dnets[len(dnets)-1].Ms, nNet)
	return nSb
}

// scalingNFT draws the same curves with the nftables backend, beside
// the iptables ones on the same host (names and subnets of its own), and
// removes what it made.
func scalingNFT(res *Results, nSb, nNet, nPorts int) {
	t := backendTool{"nftables", "n", 203}
	t.run("network", "create", "--subnet", "10.203.0.0/16", "nscale")
	var sb, nets, ps []Point
	for i := 1; i <= nSb; i++ {
		sb = append(sb, Point{i, t.run("run", "-d", "--net", "nscale", "--name", fmt.Sprintf("nsc%d", i))})
	}
	for i := 1; i <= nNet; i++ {
		nets = append(nets, Point{i, t.run("network", "create", "--subnet", fmt.Sprintf("10.204.%d.0/24", i), fmt.Sprintf("nsn%d", i))})
	}
	for i := 1; i <= nPorts; i++ {
		ps = append(ps, Point{i, t.run("expose", "nsc1", strconv.Itoa(50000+i))})
	}
	res.Scaling["ours (nftables): run -d, by sandboxes on the network"] = sb
	res.Scaling["ours (nftables): network create, by networks"] = nets
	res.Scaling["ours (nftables): expose one port, by published ports"] = ps
	fmt.Printf("ours (nftables): run -d %.1f ms at 1 sandbox, %.1f ms at %d; network create %.1f ms at 1, %.1f ms at %d; expose %.1f ms at 1, %.1f ms at %d\n",
		sb[0].Ms, sb[len(sb)-1].Ms, nSb, nets[0].Ms, nets[len(nets)-1].Ms, nNet, ps[0].Ms, ps[len(ps)-1].Ms, nPorts)
	for i := 1; i <= nSb; i++ {
		t.run("rm", "-f", fmt.Sprintf("nsc%d", i))
	}
	for i := 1; i <= nNet; i++ {
		t.run("network", "rm", fmt.Sprintf("nsn%d", i))
	}
	t.run("network", "rm", "nscale")
}
