package iptables

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
)

func init() {
	plan.Register("netns-dns-nat", func() plan.Step { return &NamespaceDNS{} })
}

// Chains of the embedded DNS inside a sandbox, Docker's DOCKER_OUTPUT and
// DOCKER_POSTROUTING with our prefix.
const (
	ChainDNSOutput      = "MINIDOCKER_OUTPUT"
	ChainDNSPostrouting = "MINIDOCKER_POSTROUTING"
)

// NamespaceDNS writes the nat rules inside a sandbox's namespace that
// bring 127.0.0.11:53 to the resolver's sockets there, as Docker's: a DNAT
// in OUTPUT for the queries, a SNAT in POSTROUTING so replies come from
// port 53. The sandbox's nat table is minidocker-net's: it is written
// whole, with one iptables-restore run in the namespace; undoing empties
// it.
type NamespaceDNS struct {
	Netns string `json:"netns"`
	IP    string `json:"ip"`
	Port  int    `json:"port"`
}

func (s *NamespaceDNS) Kind() string { return "netns-dns-nat" }

// rules are the nat table's rules, as iptables-save prints them.
func (s *NamespaceDNS) rules() []string {
	d := "-d " + s.IP + "/32"
	src := "-s " + s.IP + "/32"
	p := fmt.Sprint(s.Port)
	return []string{
		"-A OUTPUT " + d + " -j " + ChainDNSOutput,
		"-A POSTROUTING " + d + " -j " + ChainDNSPostrouting,
		"-A " + ChainDNSOutput + " " + d + " -p tcp -m tcp --dport 53 -j DNAT --to-destination " + s.IP + ":" + p,
		"-A " + ChainDNSOutput + " " + d + " -p udp -m udp --dport 53 -j DNAT --to-destination " + s.IP + ":" + p,
		"-A " + ChainDNSPostrouting + " " + src + " -p tcp -m tcp --sport " + p + " -j SNAT --to-source :53",
		"-A " + ChainDNSPostrouting + " " + src + " -p udp -m udp --sport " + p + " -j SNAT --to-source :53",
	}
}

func natTable(chains []string, rules []string) string {
	var b strings.Builder
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	for _, c := range chains {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, r := range rules {
		b.WriteString(r + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func (s *NamespaceDNS) script() string {
	return natTable([]string{ChainDNSOutput, ChainDNSPostrouting}, s.rules())
}

func (s *NamespaceDNS) Commands() []string {
	return []string{"ip netns exec " + s.Netns + " " + IPv4.Restore + " <<'EOF'\n" + s.script() + "EOF"}
}

func (s *NamespaceDNS) UndoCommands() []string {
	return []string{"ip netns exec " + s.Netns + " " + IPv4.Restore + " <<'EOF'\n" + natTable(nil, nil) + "EOF"}
}

// inNamespace runs a family tool in the sandbox's namespace.
func inNamespace(ns string, stdin string, tool string, args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"--net=" + nsnet.Path(ns), tool}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ip netns exec %s %s: %w: %s", ns, tool, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (s *NamespaceDNS) Apply(*plan.Context) error {
	if !nsnet.Exists(s.Netns) {
		return fmt.Errorf("the embedded DNS's rules: namespace %s does not exist", s.Netns)
	}
	_, err := inNamespace(s.Netns, s.script(), IPv4.Restore)
	return err
}

func (s *NamespaceDNS) Undo(*plan.Context) error {
	if !nsnet.Exists(s.Netns) {
		return nil
	}
	_, err := inNamespace(s.Netns, natTable(nil, nil), IPv4.Restore)
	return err
}

// Satisfied: the sandbox's nat table holds the rules (a flush, say by
// 'ip netns exec S iptables -t nat -F', takes them).
func (s *NamespaceDNS) Satisfied(*plan.Context) (bool, error) {
	if !nsnet.Exists(s.Netns) {
		return false, nil
	}
	out, err := inNamespace(s.Netns, "", IPv4.Save, "-t", "nat")
	if err != nil {
		return false, nil
	}
	for _, r := range s.rules() {
		if !strings.Contains(out, r+"\n") {
			return false, nil
		}
	}
	return true, nil
}

// Released: a whole sandbox's teardown leaves the rules to go with its
// namespace.
func (s *NamespaceDNS) Released() plan.Step { return &firewall.DNSReleased{Netns: s.Netns} }
