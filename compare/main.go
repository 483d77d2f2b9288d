// Command compare runs the classic lessons once with Docker and once with
// minidocker-net, each in its own throwaway host, then both in one host,
// and prints side by side what each built and how it behaved: the
// reachability and name matrices (which must match), subnets, addresses,
// gateways, MACs, interfaces and routes inside each sandbox, and the
// iptables rules normalised, every remaining difference explained. It
// exits non-zero on a behavioural mismatch.
package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/minidocker-net/minidocker-net/hostns"
)

var (
	mdn    = flag.String("mdn", "bin/minidocker-net", "the minidocker-net binary")
	role   = flag.String("role", "", "internal: which lesson run this throwaway host does (docker, ours, both)")
	output = flag.String("facts", "", "internal: where the facts go")
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == hostns.InitCommand {
		os.Exit(hostns.Init(os.Args[2:]))
	}
	flag.Parse()
	if *role != "" {
		os.Exit(inHost(*role, *output))
	}
	os.Exit(compare())
}

// runRole runs one role in a fresh throwaway host and reads its facts.
func runRole(role string) (Facts, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "compare-facts-")
	if err != nil {
		return nil, err
	}
	f.Close()
	defer os.Remove(f.Name())
	mdnPath := *mdn
	if p, err := exec.LookPath(*mdn); err == nil {
		mdnPath = p
	}
	mdnPath, _ = filepath.Abs(mdnPath)
	cmd := hostns.Command(self, self, "-role", role, "-facts", f.Name(), "-mdn", mdnPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s run: %w", role, err)
	}
	return readFacts(f.Name())
}

func compare() int {
	ours, err := runRole("ours")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	docker, err := runRole("docker")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if msg, ok := docker["skipped"]; ok {
		fmt.Println("Docker could not run here, nothing compared: " + msg)
		return 0
	}
	both, err := runRole("both")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mismatches := 0
	section := func(title string) { fmt.Printf("\n== %s\n", title) }

	section("behaviour (must match)")
	mismatches += side(docker, ours, "behaviour/")
	section("addresses, MACs, gateways, interfaces and routes inside each sandbox (must match)")
	mismatches += side(docker, ours, "net/")
	section("iptables rules, normalised (bridges and chains renamed, counters dropped)")
	explainRules(docker["rules"], ours["rules"])
	section("ip6tables rules, normalised (the IPv6 lesson's network)")
	explainRules(docker["rules6"], ours["rules6"])
	section("both on one host at once")
	for _, k := range sortedKeys(both) {
		if strings.HasPrefix(k, "both/") {
			ok := both[k] == "yes"
			mark := "ok  "
			if !ok {
				mark, mismatches = "FAIL", mismatches+1
			}
			fmt.Printf("%s %s\n", mark, strings.TrimPrefix(k, "both/"))
		}
	}
	if mismatches > 0 {
		fmt.Printf("\n%d behavioural mismatches\n", mismatches)
		return 1
	}
	fmt.Println("\nno behavioural difference")
	return 0
}

// side prints facts of both tools with a prefix, and counts mismatches.
func side(docker, ours Facts, prefix string) int {
	n := 0
	all := maps.Clone(docker)
	maps.Copy(all, ours)
	fmt.Printf("%-58s %-26s %s\n", "", "Docker", "minidocker-net")
	for _, k := range sortedKeys(all) {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		d, o := docker[k], ours[k]
		mark := "  "
		if d != o {
			mark = "≠ "
			n++
		}
		dl, ol := strings.Split(d, "\n"), strings.Split(o, "\n")
		for i := 0; i < max(len(dl), len(ol)); i++ {
			label := ""
			if i == 0 {
				label = mark + strings.TrimPrefix(k, prefix)
			}
			fmt.Printf("%-58s %-26s %s\n", label, at(dl, i), at(ol, i))
		}
	}
	return n
}

func at(l []string, i int) string {
	if i < len(l) {
		return l[i]
	}
	return ""
}

func sortedKeys(f Facts) []string {
	var k []string
	for key := range f {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// explanations say why a normalised rule exists in only one of the tools.
var explanations = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`^(docker|ours): filter -A FORWARD -(o|i) <net:`), "per-network rules: Docker 20.10 puts them in FORWARD; minidocker-net uses Docker 28's chains (X-FORWARD, X-CT, X-BRIDGE)"},
	{regexp.MustCompile(`^ours: filter -A X-(CT|BRIDGE|FORWARD) `), "Docker 28's chain layout (X-FORWARD -> X-CT, X-ISOLATION-STAGE-1, X-BRIDGE); Docker 20.10 uses FORWARD directly"},
	{regexp.MustCompile(`^ours: filter -A X -i <net:.*> -o|^ours: filter -A X ! -i <net:\S+> -o <net:\S+> -j DROP`), "Docker 28 closes unpublished ports with a per-bridge DROP in X; 20.10 relied on the FORWARD policy"},
	{regexp.MustCompile(`^docker: nat -A X -i <net:\S+> -j RETURN`), "Docker's userland proxy: traffic from a bridge skips DNAT and goes to docker-proxy; minidocker-net DNATs it in the kernel"},
	{regexp.MustCompile(`--ctstate DNAT`), "published ports are reachable from other networks (Docker 29 behaviour; Docker 20.10 reaches them through docker-proxy)"},
	{regexp.MustCompile(`^docker: nat -A OUTPUT ! -d (127.0.0.0/8|::1/128)|^ours: nat -A OUTPUT -m addrtype`), "Docker's userland proxy handles localhost; minidocker-net DNATs 127.0.0.1 in the kernel (route_localnet on its bridges only; ::1 cannot be, and is refused)"},
	{regexp.MustCompile(`^docker: filter -A X-ISOLATION-STAGE-\d -[io] <net:(applesonly|bridge|test-network)>`), "ip6tables: Docker 20.10 writes every network's isolation rules for IPv6 too, IPv6 or not; minidocker-net only those of IPv6 networks"},
	{regexp.MustCompile(`-j DNAT`), "Docker's proxy mode matches ! -i <bridge> on DNAT; in the kernel-only mode (Docker's own --userland-proxy=false) the bridge is not excluded"},
	{regexp.MustCompile(`^ours: raw `), "raw drops: direct routing to sandboxes from off their bridge (Docker 28, once per network here, the gateway excepted) and 127/8 from sandboxes (CVE-2020-8558)"},
	{regexp.MustCompile(`--src-type LOCAL -j MASQUERADE`), "host to sandbox via localhost: the kernel-only path masquerades the host's own source"},
	{regexp.MustCompile(`RETURN$`), "Docker 20.10 ends its chains with RETURN; Docker 28 and minidocker-net fall through"},
	{regexp.MustCompile(`X-ISOLATION-STAGE-2 -o (docker0|br-\+) -j DROP`), "minidocker-net isolates its networks from Docker's too, so they can share a host"},
	{regexp.MustCompile(`X-USER|X-INTERNAL|X-ISOLATION|-j X-FORWARD`), "chain plumbing of Docker 28's layout"},
}

func explainRules(docker, ours string) {
	set := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			if l != "" {
				m[l] = true
			}
		}
		return m
	}
	d, o := set(docker), set(ours)
	same := 0
	groups := map[string][]string{}
	var unexplained []string
	for _, pair := range []struct {
		who  string
		a, b map[string]bool
	}{{"docker", d, o}, {"ours", o, d}} {
		for l := range pair.a {
			if pair.b[l] {
				if pair.who == "docker" {
					same++
				}
				continue
			}
			line := pair.who + ": " + l
			found := false
			for _, e := range explanations {
				if e.re.MatchString(line) {
					groups[e.why] = append(groups[e.why], line)
					found = true
					break
				}
			}
			if !found {
				unexplained = append(unexplained, line)
			}
		}
	}
	fmt.Printf("%d rules identical in both after normalisation\n", same)
	var whys []string
	for w := range groups {
		whys = append(whys, w)
	}
	sort.Strings(whys)
	for _, w := range whys {
		fmt.Printf("\n  %s:\n", w)
		sort.Strings(groups[w])
		for _, l := range groups[w] {
			fmt.Printf("    %s\n", l)
		}
	}
	sort.Strings(unexplained)
	if len(unexplained) > 0 {
		fmt.Printf("\n  not explained yet:\n")
		for _, l := range unexplained {
			fmt.Printf("    %s\n", l)
		}
	}
}
