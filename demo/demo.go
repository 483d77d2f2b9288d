// Package demo is the guided walk through the classic Docker networking
// lessons, rebuilt with minidocker-net: each step shows the Docker command
// it mirrors, the primitives minidocker-net ran, and the observed result
// (real ping and nc output), and checks that the result is what Docker
// would give.
package demo

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/hostns"
)

// The demo runs in a throwaway host: this binary re-executed as the
// host's first process (the hidden command InitCommand, which Init runs).
const InitCommand = hostns.InitCommand

// Init is the throwaway host's first process.
func Init(args []string) int { return hostns.Init(args) }

// Throwaway returns the command that runs args in a new throwaway host.
func Throwaway(self string, args ...string) *exec.Cmd { return hostns.Command(self, args...) }

// Options configure a demo run.
type Options struct {
	Self    string // the minidocker-net binary; its state directory comes from the environment
	Step    bool   // pause between lessons
	Keep    bool   // leave the topology up
	Out     io.Writer
	In      io.Reader
	PerStep int // lines shown per primitive step before eliding (0: all)
	// NFTables: the lessons run with the nftables backend, and show its
	// tables where they show iptables'.
	NFTables bool
}

// ruleset is the command that lists the whole firewall of the backend.
func (o Options) ruleset() []string {
	if o.NFTables {
		return []string{"nft", "list", "ruleset"}
	}
	return []string{"iptables-save"}
}

type runner struct {
	Options
	failed []string
	passed int
	lesson int
}

// Run walks through every lesson; it returns an error naming the checks
// that did not behave as Docker would.
func Run(o Options) error {
	r := &runner{Options: o}
	// Commands are shown as a user types them: minidocker-net on PATH.
	if err := os.Setenv("PATH", filepath.Dir(o.Self)+string(os.PathListSeparator)+os.Getenv("PATH")); err != nil {
		return err
	}
	for _, tool := range []string{"ping", "nc", "ip", "iptables-save", "sh", "timeout", "nslookup"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the demo needs %s: run scripts/demo.sh, which installs it", tool)
		}
	}
	before, err := r.output(r.ruleset()[0], r.ruleset()[1:]...)
	if err != nil {
		return err
	}
	lessons := []func(){r.echoRelay, r.testNetwork, r.applesOnly, r.hostAndNone, r.views}
	for i, l := range lessons {
		l()
		if o.Step && i < len(lessons)-1 {
			r.pause()
		}
	}
	if o.Keep {
		r.printf("\nThe topology stays up (--keep). Explore it: minidocker-net ps, bridges, rules, graph, trace red-apple orange-server,\nip netns exec apple-server ping orange-server.\n")
	} else {
		r.cleanup(before)
	}
	r.printf("\n%d checks passed, %d failed.\n", r.passed, len(r.failed))
	if len(r.failed) > 0 {
		return fmt.Errorf("%d lesson checks did not behave as Docker would: %s", len(r.failed), strings.Join(r.failed, "; "))
	}
	return nil
}

func (r *runner) printf(format string, a ...any) { fmt.Fprintf(r.Out, format, a...) }

func (r *runner) pause() {
	r.printf("\n[press Enter for the next lesson] ")
	_, _ = bufio.NewReader(r.In).ReadString('\n')
}

func (r *runner) section(title, explain string) {
	r.lesson++
	line := strings.Repeat("─", max(0, 72-len(title)))
	r.printf("\n── %d. %s %s\n%s\n", r.lesson, title, line, explain)
}

func (r *runner) check(ok bool, what string) {
	if ok {
		r.passed++
		r.printf("   ✓ %s\n", what)
		return
	}
	r.failed = append(r.failed, what)
	r.printf("   ✗ %s  (NOT as Docker would behave)\n", what)
}

func quote(args []string) string {
	var q []string
	for _, a := range args {
		if strings.ContainsAny(a, " |'\"$;&") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q = append(q, a)
	}
	return strings.Join(q, " ")
}

// do runs minidocker-net with --verbose and shows the command, the
// primitives it ran and its output. It returns the output and success.
func (r *runner) do(docker string, args ...string) (string, bool) {
	return r.doIn(nil, "", docker, args...)
}

// doIn is do on another host: prefix enters it, prompt names it.
func (r *runner) doIn(prefix []string, prompt, docker string, args ...string) (string, bool) {
	if docker != "" {
		r.printf("\n   Docker:          %s\n", docker)
	}
	r.printf("   minidocker-net:  %s$ minidocker-net %s\n", prompt, quote(args))
	full := append(append(append([]string{}, prefix...), r.Self, "--verbose"), args...)
	cmd := exec.Command(full[0], full[1:]...)
	var out, steps bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &steps
	err := cmd.Run()
	if steps.Len() > 0 {
		r.printf("   primitives it ran:\n")
		r.printSteps(steps.String())
	}
	if s := strings.TrimSpace(out.String()); s != "" {
		r.printf("   output:\n%s\n", indent(s, "     "))
	}
	return out.String(), err == nil
}

// printSteps shows the numbered steps of --verbose, a file's content as a
// one-line summary and at most PerStep lines of any one step.
func (r *runner) printSteps(text string) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	shown := 0
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if len(l) > 4 && strings.TrimSpace(l[:4]) != "" {
			shown = 0 // a new step number
		}
		if strings.HasSuffix(l, "<<'EOF'") {
			n := 0
			for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "EOF" {
				i++
				n++
			}
			i++
			l = strings.TrimSuffix(l, " <<'EOF'") + fmt.Sprintf("   (%d lines)", n)
		}
		shown++
		if r.PerStep > 0 && shown > r.PerStep {
			rest := 0
			for i+1 < len(lines) && (len(lines[i+1]) <= 4 || strings.TrimSpace(lines[i+1][:4]) == "") {
				i++
				rest++
			}
			r.printf("          ... and %d more (minidocker-net --dry-run shows every one)\n", rest+1)
			continue
		}
		r.printf("     %s\n", l)
	}
}

// observe runs a shell command as a user would and shows its output.
func (r *runner) observe(what, shell string) (string, bool) {
	r.printf("\n   %s\n   $ %s\n", what, shell)
	out, err := exec.Command("sh", "-c", shell).CombinedOutput()
	if s := strings.TrimSpace(string(out)); s != "" {
		r.printf("%s\n", indent(s, "     "))
	}
	return string(out), err == nil
}

func (r *runner) output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return string(out), nil
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func (r *runner) mdn(args ...string) string {
	return quote(append([]string{"minidocker-net"}, args...))
}

func (r *runner) echoRelay() {
	r.section("The echo relay on two published ports",
		"A sandbox runs `nc -lp 45678 | nc -lp 45679`; both ports are published. Text typed into\n"+
			"localhost:45678 comes out of localhost:45679, through DNAT in the kernel: no proxy process.")
	relay := []string{"sh", "-c", "nc -lp 45678 | nc -lp 45679"}
	_, ok := r.do("docker run -d --name echo-server -p 45678:45678 -p 45679:45679 busybox sh -c 'nc -lp 45678 | nc -lp 45679'",
		append([]string{"run", "-d", "--name", "echo-server", "-p", "45678:45678", "-p", "45679:45679", "--"}, relay...)...)
	r.check(ok, "the echo-server sandbox runs with 45678 and 45679 published")
	waitListening := r.mdn("exec", "echo-server", "--", "sh", "-c",
		"for i in $(seq 100); do ss -Hltn | grep -q :45679 && exit 0; sleep 0.05; done; exit 1")
	_ = exec.Command("sh", "-c", waitListening).Run()
	out, _ := r.observe("Terminal 2 listens on 45679 while terminal 1 types into 45678:",
		"f=$(mktemp); (timeout 3 nc localhost 45679 > $f &) ; sleep 0.3; echo 'hello through the kernel' | nc -q1 localhost 45678; sleep 0.3; echo \"terminal 2 printed: $(cat $f)\"; rm -f $f")
	r.check(strings.Contains(out, "terminal 2 printed: hello through the kernel"), "text sent to localhost:45678 came out of localhost:45679")

	r.printf("\n   The same from other sandboxes, through host.docker.internal (the gateway, i.e. the host):\n")
	r.do("", "rm", "-f", "echo-server")
	r.do("", append([]string{"run", "-d", "--name", "echo-server", "-p", "45678:45678", "-p", "45679:45679", "--"}, relay...)...)
	r.do("docker run -d --name typist --add-host host.docker.internal:host-gateway busybox sleep 1d", "run", "-d", "--name", "typist")
	r.do("", "run", "-d", "--name", "reader")
	_ = exec.Command("sh", "-c", waitListening).Run()
	out, _ = r.observe("reader listens on host.docker.internal:45679 while typist types into host.docker.internal:45678:",
		"f=$(mktemp); ("+r.mdn("exec", "reader", "--", "timeout", "3", "nc", "host.docker.internal", "45679")+" > $f &) ; sleep 0.3; echo 'hello from a sandbox' | "+
			r.mdn("exec", "typist", "--", "nc", "-q1", "host.docker.internal", "45678")+"; sleep 0.3; echo \"reader printed: $(cat $f)\"; rm -f $f")
	r.check(strings.Contains(out, "reader printed: hello from a sandbox"), "sandboxes reach published ports through host.docker.internal (hairpin NAT)")
	r.observe("No process holds the published ports: the kernel does all of it.", "ss -Hltnp | grep -E ':4567[89]' || echo 'nothing listens on 45678/45679 on the host'")
}

func (r *runner) testNetwork() {
	r.section("A user-defined network: names resolve",
		"On a network you create, sandboxes reach each other by name, through the embedded DNS at 127.0.0.11,\n"+
			"as on Docker: one resolver process for the host answers inside every sandbox.")
	out, ok := r.do("docker network create test-network", "network", "create", "test-network")
	r.check(ok && len(strings.TrimSpace(out)) == 64, "test-network is created")
	r.do("docker run -d --net test-network --name apple-server busybox sleep 1d", "run", "-d", "--net", "test-network", "--name", "apple-server")
	r.do("docker run -d --net test-network --name orange-server busybox sleep 1d", "run", "-d", "--net", "test-network", "--name", "orange-server")
	out, _ = r.observe("The same addresses Docker hands out:", r.mdn("network", "inspect", "test-network")+" | grep -E '\"(Name|Subnet|Gateway|IPv4Address)\"'")
	r.check(strings.Contains(out, "172.18.0.0/16") && strings.Contains(out, "172.18.0.2/16") && strings.Contains(out, "172.18.0.3/16"),
		"test-network is 172.18.0.0/16, apple-server 172.18.0.2, orange-server 172.18.0.3, as on Docker")
	_, ok = r.observe("apple-server pings orange-server by name:", r.mdn("exec", "apple-server", "--", "ping", "-c1", "-W1", "orange-server"))
	r.check(ok, "apple-server reaches orange-server by name")
	_, ok = r.observe("and the other way, through plain `ip netns exec`:", "ip netns exec orange-server ping -c1 -W1 apple-server")
	r.check(ok, "orange-server reaches apple-server by name")
	out, _ = r.observe("Who answers? resolv.conf names 127.0.0.11, Docker's embedded DNS:", r.mdn("exec", "apple-server", "--", "nslookup", "orange-server"))
	r.check(strings.Contains(out, "127.0.0.11") && strings.Contains(out, "172.18.0.3"), "nslookup orange-server is answered by 127.0.0.11, as on Docker")
	if r.NFTables {
		out, _ = r.observe("How the query gets there: a nat table inside the sandbox brings 127.0.0.11:53 to the resolver's port, as Docker 29's docker-dns:",
			"ip netns exec apple-server nft list table ip minidocker-dns; "+r.mdn("inspect", "-f", "{{.MinidockerNet.DNS}}", "apple-server"))
		r.check(strings.Contains(out, "udp dport 53 dnat to 127.0.0.11:") && strings.Contains(out, "snat to 127.0.0.11:53"), "the in-namespace DNAT/SNAT pair is there")
		return
	}
	out, _ = r.observe("How the query gets there: nat rules inside the sandbox bring 127.0.0.11:53 to the resolver's port, as Docker's DOCKER_OUTPUT/DOCKER_POSTROUTING:",
		"ip netns exec apple-server iptables -t nat -S | grep 127.0.0.11; "+r.mdn("inspect", "-f", "{{.MinidockerNet.DNS}}", "apple-server"))
	r.check(strings.Contains(out, "MINIDOCKER_OUTPUT") && strings.Contains(out, "--to-source :53"), "the in-namespace DNAT/SNAT pair is there")
}

func (r *runner) applesOnly() {
	r.section("applesonly: red-apple reaches apple-server, not orange-server",
		"apple-server joins a second network. red-apple, on that network only, reaches apple-server;\n"+
			"orange-server neither resolves nor answers from there: networks are isolated.")
	r.do("docker network create applesonly", "network", "create", "applesonly")
	r.do("docker network connect applesonly apple-server", "network", "connect", "applesonly", "apple-server")
	out, _ := r.observe("apple-server's default route moved to applesonly (lowest network name wins, as on Docker 28):", "ip -n apple-server route")
	r.check(strings.Contains(out, "default via 172.19.0.1 dev eth1"), "apple-server's default route is via applesonly (eth1)")
	r.do("docker run --rm -ti --net applesonly --name red-apple busybox sh   (here detached, to look at it from outside)", "run", "-d", "--net", "applesonly", "--name", "red-apple")
	_, ok := r.observe("red-apple pings apple-server:", r.mdn("exec", "red-apple", "--", "ping", "-c1", "-W1", "apple-server"))
	r.check(ok, "red-apple reaches apple-server")
	out, ok = r.observe("red-apple pings orange-server:", r.mdn("exec", "red-apple", "--", "ping", "-c1", "-W1", "orange-server"))
	r.check(!ok && strings.Contains(out, "name resolution"), "orange-server does not resolve in red-apple")
	_, ok = r.observe("and not even by address:", r.mdn("exec", "red-apple", "--", "ping", "-c1", "-W1", "172.18.0.3"))
	r.check(!ok, "orange-server's address is unreachable from red-apple")
	out, _ = r.observe("Why? trace explains it rule by rule:", r.mdn("trace", "red-apple", "172.18.0.3")+"; true")
	r.check(strings.Contains(out, "drops it"), "trace names the rule that drops the packet")
}

func (r *runner) hostAndNone() {
	r.section("--net host and --net none",
		"--net host runs in the host's own network namespace: it sees the host's interfaces.\n"+
			"--net none gets a namespace with loopback only.")
	out, ok := r.do("docker run --rm --net host busybox ip -br link", "run", "--rm", "--net", "host", "--", "ip", "-br", "link")
	r.check(ok && strings.Contains(out, "mdn0"), "a --net host sandbox sees the host's bridges")
	out, ok = r.do("docker run --rm --net none busybox ip -br addr", "run", "--rm", "--net", "none", "--", "ip", "-br", "addr")
	r.check(ok && strings.Contains(out, "lo ") && strings.Count(strings.TrimSpace(out), "\n") == 0, "a --net none sandbox has loopback only")
}

func (r *runner) views() {
	r.section("Look inside: bridges, NAT, namespaces",
		"What Docker hides, shown by the primitives themselves.")
	r.observe("Bridges and what is at the other end of each veth (what brctl show cannot tell you):", r.mdn("bridges"))
	if r.NFTables {
		r.observe("The published ports' DNAT, as nft shows it: one map, an element per port:", "nft list chain ip minidocker-bridges nat-prerouting-and-output; nft list map ip minidocker-bridges dnat-ports-any")
	} else {
		r.observe("The nat table, as iptables shows it:", "iptables -n -L -t nat")
	}
	r.observe("The same rules, annotated with what each one is for:", r.mdn("rules", "--table", "nat"))
	for _, sb := range []string{"apple-server", "orange-server", "red-apple"} {
		r.observe("Namespace "+sb+": its interfaces and routes:", "ip -n "+sb+" -br addr && ip -n "+sb+" route")
	}
	out, _ := r.observe("Everything at once:", r.mdn("ps"))
	r.check(strings.Contains(out, "applesonly (gw)"), "ps shows each sandbox's networks, addresses and ports")
}

func (r *runner) cleanup(before string) {
	r.section("Clean up", "Everything is removed again; the host must be exactly as before the demo.")
	for _, sb := range []string{"echo-server", "typist", "reader", "apple-server", "orange-server", "red-apple"} {
		r.do("", "rm", "-f", sb)
	}
	r.do("docker network rm applesonly test-network", "network", "rm", "applesonly", "test-network")
	r.printf("\n   The default network 'bridge' went with its last sandbox (mdn0 and its rules with it); reset finds nothing left:\n")
	r.do("", "reset")
	time.Sleep(10 * time.Millisecond)
	after, err := r.output(r.ruleset()[0], r.ruleset()[1:]...)
	strip := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, "#") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	r.check(err == nil && strip(after) == strip(before), strings.Join(r.ruleset(), " ")+" is byte-identical to before the demo")
	links, _ := r.output("ip", "-o", "link")
	ns, _ := os.ReadDir("/var/run/netns")
	r.check(!strings.Contains(links, " mdn") && len(ns) == 0, "no mdn interface and no namespace is left")
}
