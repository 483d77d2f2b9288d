package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/dockerhost"
)

// Facts are what one run observed, keyed so that the same fact has the same
// key for both tools.
type Facts map[string]string

func readFacts(path string) (Facts, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := Facts{}
	return f, json.Unmarshal(b, &f)
}

// tool drives Docker or minidocker-net the way a user would.
type tool struct {
	cli     []string
	image   []string // what follows the options of run: the image for Docker
	sep     []string // what separates run's options from the command
	extra   []string // run options one tool needs to match the other
	enterNS func(sb string) []string
	bridge  func(network string) string
}

func (t *tool) do(args ...string) (string, error) {
	full := append(append([]string{}, t.cli...), args...)
	out, err := exec.Command(full[0], full[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(full, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (t *tool) must(args ...string) string {
	out, err := t.do(args...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
	return out
}

// run starts a detached sandbox: idle, or running cmd.
func (t *tool) run(name, network string, opts []string, cmd ...string) {
	args := []string{"run", "-d", "--name", name}
	if network != "" {
		args = append(args, "--net", network)
	}
	args = append(append(append(args, t.extra...), opts...), t.image...)
	if len(cmd) == 0 && len(t.image) > 0 {
		cmd = []string{"sleep", "1d"}
	}
	if len(cmd) > 0 {
		args = append(append(args, t.sep...), cmd...)
	}
	t.must(args...)
}

// inside runs a command in the sandbox with its own /etc (its resolver).
func (t *tool) inside(sb string, cmd ...string) (string, bool) {
	args := append([]string{"exec", sb}, t.sep...)
	out, err := t.do(append(args, cmd...)...)
	return out, err == nil
}

// host runs a host tool in the sandbox's network namespace, so both tools'
// sandboxes are read with the same programs.
func (t *tool) host(sb string, cmd ...string) string {
	full := append(t.enterNS(sb), cmd...)
	out, _ := exec.Command(full[0], full[1:]...).CombinedOutput()
	return string(out)
}

func docker() *tool {
	return &tool{
		cli: []string{"docker"}, image: []string{dockerhost.Image},
		// Docker Desktop's name for the host, which minidocker-net always has.
		extra: []string{"--add-host", "host.docker.internal:host-gateway"},
		enterNS: func(sb string) []string {
			pid, _ := exec.Command("docker", "inspect", "-f", "{{.State.Pid}}", sb).Output()
			return []string{"nsenter", "-t", strings.TrimSpace(string(pid)), "-n"}
		},
		bridge: func(n string) string {
			if n == "bridge" {
				return "docker0"
			}
			id, _ := exec.Command("docker", "network", "inspect", "-f", "{{.Id}}", n).Output()
			return "br-" + strings.TrimSpace(string(id))[:12]
		},
	}
}

func ours() *tool {
	return &tool{
		cli: []string{*mdn}, sep: []string{"--"},
		enterNS: func(sb string) []string { return []string{"ip", "netns", "exec", sb} },
		bridge: func(n string) string {
			out, _ := exec.Command(*mdn, "network", "inspect", n).Output()
			var v []struct{ MinidockerNet struct{ Bridge string } }
			_ = json.Unmarshal(out, &v)
			if len(v) == 0 {
				return "?"
			}
			return v[0].MinidockerNet.Bridge
		},
	}
}

var pingRE = regexp.MustCompile(`PING \S+ \((\d+\.\d+\.\d+\.\d+)\)`)

var (
	nsServerRE = regexp.MustCompile(`(?m)^Server:\s+(\S+)`)
	nsAnswerRE = regexp.MustCompile(`(?m)^(?:Address: (\S+)|\S+\s+name = (\S+))$`)
	nsFailRE   = regexp.MustCompile(`(?m)can't find .*: (\S+)`)
)

// nslookup asks a sandbox's resolver with busybox's nslookup: which server
// answered, and what (or why not).
func nslookup(t *tool, from string, args ...string) string {
	out, _ := t.inside(from, append([]string{"busybox", "nslookup"}, args...)...)
	server := "?"
	if m := nsServerRE.FindStringSubmatch(out); m != nil {
		server = strings.TrimSuffix(m[1], ":53")
	}
	var answers []string
	for _, m := range nsAnswerRE.FindAllStringSubmatch(out, -1) {
		answers = append(answers, m[1]+m[2])
	}
	sort.Strings(answers)
	switch {
	case len(answers) > 0:
		return server + ": " + strings.Join(answers, " ")
	case nsFailRE.MatchString(out):
		return server + ": " + nsFailRE.FindStringSubmatch(out)[1]
	}
	return server + ": no answer"
}

// ping reports what one ICMP echo from a sandbox to a name or address does.
func ping(t *tool, from, to string) string {
	out, ok := t.inside(from, "ping", "-c1", "-W1", to)
	m := pingRE.FindStringSubmatch(out)
	switch {
	case m == nil:
		return "no: does not resolve"
	case ok:
		return "yes (" + m[1] + ")"
	}
	return "no: " + m[1] + " does not answer"
}

// relay types into port a and reads port b: the echo relay lesson. It
// returns whether the reader got the line, and what it got if not.
func relay(t *tool, reader, writer, host string, a, b int) (bool, string) {
	q := func(args []string) string {
		var out []string
		for _, s := range args {
			out = append(out, "'"+s+"'")
		}
		return strings.Join(out, " ")
	}
	cmd := func(from string, args ...string) string {
		if from == "" {
			return q(args)
		}
		return q(append(append(append(append([]string{}, t.cli...), "exec", "-i", from), t.sep...), args...))
	}
	// The line is waited for (up to 15 s), not timed: on a busy machine a
	// docker exec alone can take seconds. Both sides are then stopped from
	// outside: Debian's nc waits forever after EOF on stdin, busybox's
	// quits at once (so the reader's stdin stays open).
	script := fmt.Sprintf(`f=$(mktemp); timeout 20 %s > $f 2>&1 & r=$!; sleep 0.5; echo 'hello relay' | timeout 20 %s >/dev/null 2>&1 & w=$!
i=0; while [ $i -lt 150 ] && ! grep -q 'hello relay' $f; do sleep 0.1; i=$((i+1)); done
kill $r $w 2>/dev/null; wait 2>/dev/null; cat $f; rm -f $f`,
		cmd(reader, "sh", "-c", fmt.Sprintf("sleep 20 | nc %s %d", host, b)), cmd(writer, "nc", host, fmt.Sprint(a)))
	out, _ := exec.Command("sh", "-c", script).CombinedOutput()
	return strings.Contains(string(out), "hello relay"), strings.TrimSpace(string(out))
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// listening waits (at most 10 s) until a sandbox's programs listen on
// every port, read from its own /proc/net/tcp with the host's cat.
func listening(t *tool, sb string, ports ...int) bool {
	for i := 0; i < 100; i++ {
		tcp := t.host(sb, "cat", "/proc/net/tcp")
		all := true
		for _, p := range ports {
			all = all && regexp.MustCompile(fmt.Sprintf(`:%04X [0-9A-F:]+ 0A `, p)).MatchString(tcp)
		}
		if all {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// relayWorks runs the echo relay lesson, with a fresh one-shot echo server
// for each of up to five attempts, each once the server listens: a busy
// machine can make the reader connect too late, for either tool, and a
// mismatch reported must be a real one.
func relayWorks(t *tool, reader, writer, host string, a, b int) bool {
	cmd := []string{"sh", "-c", fmt.Sprintf("nc -lp %d | nc -lp %d", a, b)}
	for try := 0; try < 5; try++ {
		t.run("echo-server", "", []string{"-p", fmt.Sprintf("%d:%d", a, a), "-p", fmt.Sprintf("%d:%d", b, b)}, cmd...)
		listening(t, "echo-server", a, b)
		time.Sleep(time.Duration(300*(try+1)) * time.Millisecond) // Docker's proxy, after the program
		ok, got := relay(t, reader, writer, host, a, b)
		t.must("rm", "-f", "echo-server")
		if ok {
			return true
		}
		fmt.Fprintf(os.Stderr, "compare: %s: echo relay to %s:%d and %d, attempt %d: the reader got %q\n", filepath.Base(t.cli[0]), host, a, b, try+1, got)
	}
	return false
}

// lesson runs the lessons with one tool and records behaviour and network
// facts under prefix.
func lesson(t *tool, f Facts, prefix string, a, b int) {
	f[prefix+"behaviour/echo relay: localhost:A in, localhost:B out"] = yes(relayWorks(t, "", "", "localhost", a, b))
	t.run("typist", "", nil)
	t.run("reader", "", nil)
	f[prefix+"behaviour/echo relay: between sandboxes via host.docker.internal"] = yes(relayWorks(t, "reader", "typist", "host.docker.internal", a, b))
	// Published ports of a sandbox whose program ended (see the rule notes).
	t.run("echo-server", "", []string{"-p", fmt.Sprintf("%d:%d", a, a), "-p", fmt.Sprintf("%d:%d", b, b)}, "sh", "-c", "sleep 1d")

	t.must("network", "create", "test-network")
	t.run("apple-server", "test-network", nil)
	t.run("orange-server", "test-network", nil)
	t.must("network", "create", "applesonly")
	t.must("network", "connect", "applesonly", "apple-server")
	t.run("red-apple", "applesonly", nil)
	sbs := []string{"apple-server", "orange-server", "red-apple"}
	for _, from := range sbs {
		for _, to := range sbs {
			if from != to {
				f[prefix+"behaviour/ping "+from+" -> "+to] = ping(t, from, to)
			}
		}
		for _, ip := range []string{"172.18.0.2", "172.18.0.3", "172.19.0.2", "172.19.0.3"} {
			f[prefix+"behaviour/ping "+from+" -> "+ip] = ping(t, from, ip)
		}
	}
	f[prefix+"behaviour/default network: typist -> reader by name"] = ping(t, "typist", "reader")
	// The embedded DNS, asked with busybox's nslookup on both sides.
	for _, from := range sbs {
		for _, to := range sbs {
			if from != to {
				f[prefix+"behaviour/dns: nslookup "+from+" -> "+to] = nslookup(t, from, to)
			}
		}
	}
	f[prefix+"behaviour/dns: nslookup apple-server -> orange-server.test-network"] = nslookup(t, "apple-server", "orange-server.test-network")
	f[prefix+"behaviour/dns: nslookup apple-server -> 172.18.0.3 (PTR)"] = nslookup(t, "apple-server", "172.18.0.3")
	f[prefix+"behaviour/dns: nslookup -type=AAAA apple-server -> orange-server"] = nslookup(t, "apple-server", "-type=AAAA", "orange-server")
	out, _ := t.do(append(append(append([]string{"run", "--rm", "--net", "host"}, t.image...), t.sep...), "ip", "-o", "link")...)
	f[prefix+"behaviour/--net host sees the host's bridges"] = yes(strings.Contains(out, t.bridge("test-network")))
	out, _ = t.do(append(append(append([]string{"run", "--rm", "--net", "none"}, t.image...), t.sep...), "ip", "-o", "-4", "addr")...)
	f[prefix+"behaviour/--net none has loopback only"] = yes(strings.Count(strings.TrimSpace(out), "\n") == 0 && strings.Contains(out, "127.0.0.1"))

	lesson6(t, f, prefix)
	// Beside Docker (the second lesson on one host, on other ports) the
	// LAN's other quarter: two tools' sandboxes must not share addresses.
	lan := 128
	if a != 45678 {
		lan = 192
	}
	lessonLAN(t, f, prefix, lan)

	index := regexp.MustCompile(`^\d+: |@if\d+|\s+(valid_lft|link-netnsid|proto kernel).*|\\`)
	clean := func(s string, keep func(string) bool) string {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			l = strings.Join(strings.Fields(index.ReplaceAllString(l, "")), " ")
			l = strings.Replace(l, " proto kernel", "", 1)
			// DAD in progress: a moment's state, not configuration.
			l = strings.Replace(l, " tentative", "", 1)
			if l != "" && keep(l) {
				lines = append(lines, l)
			}
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	all := func(string) bool { return true }
	for _, sb := range sbs {
		f[prefix+"net/"+sb+": addresses"] = clean(t.host(sb, "ip", "-o", "-4", "addr"), func(l string) bool { return !strings.HasPrefix(l, "lo ") })
		f[prefix+"net/"+sb+": MACs"] = clean(t.host(sb, "sh", "-c", "ip -o link | sed -E 's/.*: ([a-z0-9]+)(@[a-z0-9]+)?: .*link\\/ether ([0-9a-f:]+).*/\\1 \\3/' | grep -v loopback"), all)
		f[prefix+"net/"+sb+": routes"] = clean(t.host(sb, "ip", "route"), all)
		f[prefix+"net/"+sb+": IPv6 addresses"] = clean(t.host(sb, "ip", "-o", "-6", "addr"), all)
	}
	for _, n := range []string{"bridge", "test-network", "applesonly"} {
		br := t.bridge(n)
		out, _ := exec.Command("ip", "-o", "-4", "addr", "show", br).Output()
		f[prefix+"net/network "+n+": gateway on the bridge"] = clean(strings.ReplaceAll(string(out), br, "<bridge>"), all)
	}
	for _, sb := range []string{"lan-a", "lan-b"} {
		f[prefix+"net/"+sb+": addresses"] = clean(t.host(sb, "ip", "-o", "-4", "addr"), func(l string) bool { return !strings.HasPrefix(l, "lo ") })
		f[prefix+"net/"+sb+": MACs and link"] = clean(t.host(sb, "sh", "-c", "ip -o -d link show eth0 | grep -o 'link/ether [0-9a-f:]*\\|macvlan mode [a-z]*'"), all)
		f[prefix+"net/"+sb+": routes"] = clean(t.host(sb, "ip", "route"), all)
	}
	for _, sb := range []string{"six-a", "six-b"} {
		f[prefix+"net/"+sb+": IPv6 addresses"] = clean(t.host(sb, "ip", "-o", "-6", "addr"), func(l string) bool { return !strings.HasPrefix(l, "lo ") })
		f[prefix+"net/"+sb+": IPv6 routes"] = clean(t.host(sb, "ip", "-6", "route"), func(l string) bool { return !strings.HasPrefix(l, "multicast") })
	}
	br := t.bridge("six")
	gw6, _ := exec.Command("ip", "-o", "-6", "addr", "show", br, "scope", "global").Output()
	// Docker 28 adds it without DAD, as minidocker-net; Debian's 20.10
	// with: the flag is left out.
	f[prefix+"net/network six: IPv6 gateway on the bridge"] = strings.Replace(clean(strings.ReplaceAll(string(gw6), br, "<bridge>"), all), " nodad", "", 1)
}

// lessonLAN puts two sandboxes on the host's LAN with macvlan (the
// upstream nameserver's link is the parent): they reach each other and
// the nameserver's namespace directly, and the host does not reach them.
func lessonLAN(t *tool, f Facts, prefix string, first int) {
	t.must("network", "create", "-d", "macvlan", "--subnet", "203.0.113.0/24", "--ip-range", fmt.Sprintf("203.0.113.%d/26", first), "-o", "parent=up-dns", "lan")
	t.run("lan-a", "lan", nil)
	t.run("lan-b", "lan", nil)
	f[prefix+"behaviour/macvlan: ping lan-a -> lan-b"] = ping(t, "lan-a", "lan-b")
	f[prefix+"behaviour/macvlan: ping lan-a -> 203.0.113.53 (on the LAN)"] = ping(t, "lan-a", "203.0.113.53")
	pinged := func(ns, addr string) string {
		args := []string{"ping", "-c1", "-W1", addr}
		if ns != "" {
			args = append([]string{"ip", "netns", "exec", ns}, args...)
		}
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		return yes(err == nil && strings.Contains(string(out), "bytes from"))
	}
	// Both tools take the gateway from the range (its first address,
	// which nothing holds): lan-a is the next, lan-b the one after.
	f[prefix+"behaviour/macvlan: the host pings its child lan-a"] = pinged("", fmt.Sprintf("203.0.113.%d", first+1))
	f[prefix+"behaviour/macvlan: the LAN pings lan-b"] = pinged("upstream", fmt.Sprintf("203.0.113.%d", first+2))
}

// lesson6 is the apple lesson's IPv6 half: a dual-stack network with a
// given IPv6 subnet, two sandboxes on it reaching each other over IPv6 by
// name and address, and apple-server, on no IPv6 network, not reaching
// them.
func lesson6(t *tool, f Facts, prefix string) {
	t.must("network", "create", "--ipv6", "--subnet", "2001:db8:7::/64", "six")
	t.run("six-a", "six", nil)
	t.run("six-b", "six", nil)
	ping6 := func(from, to string) string {
		out, ok := t.inside(from, "ping", "-6", "-c1", "-W1", to)
		switch {
		case ok:
			return "yes"
		case strings.Contains(out, "bad address"), strings.Contains(out, "unknown host"):
			return "no: does not resolve"
		}
		return "no: does not answer"
	}
	f[prefix+"behaviour/ipv6: ping -6 six-a -> six-b"] = ping6("six-a", "six-b")
	f[prefix+"behaviour/ipv6: ping -6 six-a -> 2001:db8:7::3"] = ping6("six-a", "2001:db8:7::3")
	f[prefix+"behaviour/ipv6: ping -6 apple-server -> 2001:db8:7::3"] = ping6("apple-server", "2001:db8:7::3")
	f[prefix+"behaviour/ipv6: nslookup -type=AAAA six-a -> six-b"] = nslookup(t, "six-a", "-type=AAAA", "six-b")
	f[prefix+"behaviour/ipv6: nslookup six-a -> 2001:db8:7::3 (PTR)"] = nslookup(t, "six-a", "2001:db8:7::3")
}

// rules normalises iptables-save: tables kept, counters dropped, bridges
// named after their networks, both tools' chain prefix made X.
func rules(tools []*tool, only func(string) bool) string {
	return rulesOf("iptables-save", tools, only)
}

// rulesOf is rules for one save tool (ip6tables-save for IPv6).
func rulesOf(save string, tools []*tool, only func(string) bool) string {
	out, _ := exec.Command(save).Output()
	repl := []string{"MINIDOCKER-POSTROUTING", "POSTROUTING", "MINIDOCKER-PREROUTING", "PREROUTING", "MINIDOCKER", "X", "DOCKER", "X"}
	for _, t := range tools {
		for _, n := range []string{"bridge", "test-network", "applesonly", "six"} {
			repl = append(repl, t.bridge(n), "<net:"+n+">")
		}
	}
	r := strings.NewReplacer(repl...)
	var lines []string
	table := ""
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, "-A ") && (only == nil || only(l)):
			if n := r.Replace(l); !strings.HasSuffix(n, "-j POSTROUTING") && !strings.HasSuffix(n, "-j PREROUTING") {
				lines = append(lines, table+" "+n)
			}
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func isOurs(l string) bool { return strings.Contains(l, "MINIDOCKER") || strings.Contains(l, "mdn") }

// inHost is one role's run, as the first process's child of a throwaway host.
// upstreamDNS sets up the throwaway host's nameserver: dnsmasq in a
// namespace on 203.0.113.53, NXDOMAIN for every name.
const upstreamDNS = `set -e
ip netns add upstream
ip link add up-dns type veth peer name dns0 netns upstream
ip addr add 203.0.113.1/24 dev up-dns && ip link set up-dns up
ip -n upstream addr add 203.0.113.53/24 dev dns0 && ip -n upstream link set dns0 up && ip -n upstream link set lo up
ip -n upstream route add default via 203.0.113.1
ip netns exec upstream dnsmasq --no-resolv --no-hosts --address=/#/ --listen-address=203.0.113.53 --bind-interfaces --pid-file=/run/upstream-dnsmasq.pid --user=root
echo 'nameserver 203.0.113.53' > /etc/resolv.conf`

func inHost(role, path string) int {
	f := Facts{}
	write := func() int {
		b, _ := json.MarshalIndent(f, "", "  ")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	// The host's nameserver, in a namespace of the host's own: it answers
	// NXDOMAIN to everything, so what the embedded DNS forwards gets the
	// same answer with both tools (and no query leaves the host).
	if out, err := exec.Command("sh", "-c", upstreamDNS).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "compare: the upstream nameserver: %v: %s\n", err, out)
		return 1
	}
	if role != "ours" {
		// Debian's Docker 20.10 writes ip6tables rules only when told to
		// (the default from 27.0), for the IPv6 lesson.
		e, err := dockerhost.Start("--experimental", "--ip6tables")
		if err != nil {
			f["skipped"] = err.Error()
			return write()
		}
		defer e.Stop()
	}
	switch role {
	case "ours":
		fmt.Fprintln(os.Stderr, "compare: the lessons with minidocker-net")
		lesson(ours(), f, "", 45678, 45679)
		f["rules"] = rules([]*tool{ours()}, nil)
		f["rules6"] = rulesOf("ip6tables-save", []*tool{ours()}, nil)
	case "docker":
		fmt.Fprintln(os.Stderr, "compare: the lessons with Docker")
		lesson(docker(), f, "", 45678, 45679)
		f["rules"] = rules([]*tool{docker()}, nil)
		f["rules6"] = rulesOf("ip6tables-save", []*tool{docker()}, nil)
	case "both":
		fmt.Fprintln(os.Stderr, "compare: both on one host")
		d, o := docker(), ours()
		df := Facts{}
		lesson(d, df, "", 45678, 45679)
		dockerRules := rules([]*tool{d}, nil)
		of := Facts{}
		lesson(o, of, "", 45680, 45681) // 45678 and 45679 are Docker's now
		f["both/Docker's rules stay exactly as they were while minidocker-net runs its lesson"] = yes(rules([]*tool{d}, func(l string) bool { return !isOurs(l) }) == dockerRules)
		for _, k := range []string{"behaviour/ping red-apple -> apple-server", "behaviour/ping red-apple -> orange-server", "behaviour/ping red-apple -> 172.18.0.3",
			"behaviour/ping apple-server -> orange-server", "behaviour/echo relay: localhost:A in, localhost:B out", "behaviour/echo relay: between sandboxes via host.docker.internal"} {
			f["both/minidocker-net beside Docker: "+strings.TrimPrefix(k, "behaviour/")+" = "+df[k]] = yes(sameVerdict(of[k], df[k]))
		}
		f["both/Docker beside minidocker-net: red-apple still reaches apple-server"] = yes(strings.HasPrefix(ping(d, "red-apple", "apple-server"), "yes"))
		f["both/Docker beside minidocker-net: red-apple still cannot reach orange-server"] = yes(strings.HasPrefix(ping(d, "red-apple", "172.18.0.3"), "no"))
		for _, sb := range []string{"echo-server", "typist", "reader", "apple-server", "orange-server", "red-apple", "six-a", "six-b", "lan-a", "lan-b"} {
			o.must("rm", "-f", sb)
		}
		o.must("network", "rm", "test-network", "applesonly", "six", "lan")
		o.must("reset")
		f["both/after minidocker-net is removed, Docker's rules are exactly as before"] = yes(rules([]*tool{d}, nil) == dockerRules)
		f["both/after minidocker-net is removed, Docker's lesson still works"] = yes(strings.HasPrefix(ping(d, "apple-server", "orange-server"), "yes"))
		links, _ := exec.Command("ip", "-o", "link").Output()
		f["both/no interface of minidocker-net is left"] = yes(!strings.Contains(string(links), " mdn"))
	}
	return write()
}

// sameVerdict compares two ping results on their yes or no, since beside
// Docker minidocker-net's networks get other subnets.
func sameVerdict(a, b string) bool {
	return strings.SplitN(a, " ", 2)[0] == strings.SplitN(b, " ", 2)[0]
}
