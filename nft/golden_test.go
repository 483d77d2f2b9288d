package nft

import (
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/minidocker-net/minidocker-net/firewall"
)

// lines are a listing's lines, trimmed, without traffic counters.
func lines(listing string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(strings.ReplaceAll(listing, "counter packets 0 bytes 0 ", ""), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "}" {
			out[l] = true
		}
	}
	return out
}

func dockerGolden(t *testing.T, name string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	// Docker's names as ours.
	return lines(strings.NewReplacer("br-dummy", "mdn-dummy", "docker-bridges", "minidocker-bridges").Replace(string(data)))
}

func dummy() firewall.Network {
	return firewall.Network{Name: "dummy", Bridge: "mdn-dummy", Subnet: netip.MustParsePrefix("192.168.0.0/24"), Gateway: netip.MustParseAddr("192.168.0.1"), ICC: true, Masquerade: true}
}

// golden compares our table with Docker 29's: each of Docker's lines is
// ours too, or stands for the lines of ours insteadOf names; what we have
// beyond both is exactly extras.
func golden(t *testing.T, file string, in firewall.Intent, insteadOf map[string][]string, extras []string) {
	t.Helper()
	docker := dockerGolden(t, file)
	ours := lines(Listing(Layout(IPv4, in)))
	explained := map[string]bool{}
	for theirs, instead := range insteadOf {
		if !docker[theirs] {
			t.Errorf("Docker no longer has %q", theirs)
		}
		delete(docker, theirs)
		for _, l := range instead {
			if !ours[l] {
				t.Errorf("instead of Docker's %q we should have %q", theirs, l)
			}
			explained[l] = true
		}
	}
	for l := range docker {
		if !ours[l] {
			t.Errorf("Docker has a line we lack: %q", l)
		}
	}
	var extra []string
	for l := range ours {
		if !docker[l] && !explained[l] {
			extra = append(extra, l)
		}
	}
	sort.Strings(extra)
	want := slices.Clone(extras)
	sort.Strings(want)
	if !slices.Equal(extra, want) {
		t.Errorf("our extra lines changed:\n%s\nwant:\n%s", strings.Join(extra, "\n"), strings.Join(want, "\n"))
	}
}

// The lesson's shape: a network with a port published, the userland
// proxy off (the kernel-only path we always take).
func TestSameTableAsDocker29Golden(t *testing.T) {
	in := firewall.Intent{Networks: []firewall.Network{dummy()}, Ports: []firewall.Port{{Sandbox: "c", Bridge: "mdn-dummy",
		IP: netip.MustParseAddr("192.168.0.2"), Proto: "tcp", HostPort: 8080, HostPortEnd: 8080, Port: 80, PortEnd: 80}}}
	golden(t, "hairpin=true,internal=false,icc=true,masq=true,snat=false,gwm=nat,bindlh=false__ip.golden", in, map[string][]string{
		// Ports are elements of sets and maps, not a rule each.
		`tcp dport 8080 dnat to 192.168.0.2:80 comment "DNAT"`: {"map dnat-ports-any {", "elements = { tcp . 8080 : 192.168.0.2 . 80 }",
			`dnat ip to meta l4proto . th dport map @dnat-ports-any comment "DNAT"`},
		`ip daddr 192.168.0.2 tcp dport 80 accept`: {"set published-ports {", "elements = { 192.168.0.2 . tcp . 80 }",
			`ip daddr . meta l4proto . th dport @published-ports accept comment "PUBLISHED PORT"`},
		`ip saddr 192.168.0.2 ip daddr 192.168.0.2 tcp dport 80 masquerade comment "MASQ TO OWN PORT"`: {"set hairpin-ports {",
			"elements = { 192.168.0.2 . 192.168.0.2 . tcp . 80 }", `ip saddr . ip daddr . meta l4proto . th dport @hairpin-ports masquerade comment "MASQ TO OWN PORT"`},
		// The subnet's direct-access drop, with the gateway (the host's
		// own address) still reachable, as with iptables.
		`ip daddr 192.168.0.0/24 iifname != { "lo", "mdn-dummy" } drop comment "SUBNET DROP EXTERNAL"`: {
			`iifname != "mdn-dummy" ip daddr 192.168.0.0/24 ip daddr != 192.168.0.1 drop comment "DROP DIRECT ACCESS"`},
		// nft 1.0.6 (Debian 12) takes no dstnat at the output hook.
		"type nat hook output priority dstnat; policy accept;": {"type nat hook output priority -100; policy accept;"},
	}, []string{
		// Published on 127.0.0.1: its drop from anywhere else, by element.
		"set loopback-ports {", "type ipv4_addr . inet_proto . inet_service", "type ipv4_addr . ipv4_addr . inet_proto . inet_service",
		"type inet_proto . inet_service : ipv4_addr . inet_service", "type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
		"map dnat-ports-addr {", `dnat ip to ip daddr . meta l4proto . th dport map @dnat-ports-addr comment "DNAT"`,
		`iifname != "lo" ip daddr . meta l4proto . th dport @loopback-ports drop comment "DROP REMOTE LOOPBACK"`,
		// CVE-2020-8558: route_localnet is on for the bridge.
		`iifname "mdn-dummy" ip daddr 127.0.0.0/8 drop`,
		// Isolation from Docker's own bridges, beside a real Docker.
		`oifname "docker0" drop`, `oifname "br-*" drop`,
	})
}

func TestSameTableAsDocker29GoldenInternal(t *testing.T) {
	n := dummy()
	n.Internal, n.Masquerade = true, false
	golden(t, "hairpin=true,internal=true,icc=true__ip.golden", firewall.Intent{Networks: []firewall.Network{n}}, map[string][]string{
		// An internal network has no NAT: no chains for it there.
		`elements = { "mdn-dummy" : jump nat-postrouting-in__mdn-dummy }`:  nil,
		`elements = { "mdn-dummy" : jump nat-postrouting-out__mdn-dummy }`: nil,
		"chain nat-postrouting-in__mdn-dummy {":                            nil,
		"chain nat-postrouting-out__mdn-dummy {":                           nil,
	}, []string{
		"set published-ports {", "map dnat-ports-addr {", "map dnat-ports-any {", "set hairpin-ports {", "set loopback-ports {",
		"type ipv4_addr . inet_proto . inet_service", "type ipv4_addr . ipv4_addr . inet_proto . inet_service",
		"type inet_proto . inet_service : ipv4_addr . inet_service", "type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
		`dnat ip to ip daddr . meta l4proto . th dport map @dnat-ports-addr comment "DNAT"`,
		`dnat ip to meta l4proto . th dport map @dnat-ports-any comment "DNAT"`,
		`iifname != "lo" ip daddr . meta l4proto . th dport @loopback-ports drop comment "DROP REMOTE LOOPBACK"`,
	})
}

// Listing is the table as 'nft list table' prints it: sets and maps,
// then chains, each element and rule on its own.
func Listing(t *Table) string {
	var b strings.Builder
	b.WriteString("table " + string(t.Family) + " " + t.Name + " {\n")
	first := true
	sep := func() {
		if !first {
			b.WriteString("\n")
		}
		first = false
	}
	for _, s := range t.Sets {
		sep()
		b.WriteString("\t" + s.keyword() + " " + s.Name + " {\n\t\ttype " + s.Type() + "\n")
		if len(s.Elems) > 0 {
			b.WriteString("\t\telements = { " + elemList(s.Elems) + " }\n")
		}
		b.WriteString("\t}\n")
	}
	for _, c := range t.Chains {
		sep()
		b.WriteString("\tchain " + c.Name + " {\n")
		if c.Base != nil {
			b.WriteString("\t\t" + c.Base.Line() + "\n")
		}
		for _, r := range c.Rules {
			b.WriteString("\t\t" + r.Text(t.Family) + "\n")
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}
