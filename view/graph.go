package view

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/store"
)

// Uplink is the host's way out: the interface of its default route.
type Uplink struct {
	Name string
	Addr string
}

// FindUplink returns the host's default-route interface, if any.
func FindUplink() *Uplink {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil
	}
	for _, r := range routes {
		if r.Dst != nil && !r.Dst.IP.IsUnspecified() {
			continue
		}
		l, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		u := &Uplink{Name: l.Attrs().Name}
		if addrs, err := netlink.AddrList(l, netlink.FAMILY_V4); err == nil && len(addrs) > 0 {
			u.Addr = addrs[0].IPNet.String()
		}
		return u
	}
	return nil
}

// graph is the topology, independent of the output syntax.
type graph struct {
	uplink   *Uplink
	networks []*store.Network
	nets     map[string]string           // network name -> node id
	sbs      []*store.Sandbox            // this host's
	remote   map[string][]*store.Sandbox // other hosts' on overlay networks, by host
	hosts    []string
	s        *store.State
}

func id(prefix, name string) string {
	return prefix + "_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
}

func newGraph(s *store.State, up *Uplink) *graph {
	g := &graph{uplink: up, nets: map[string]string{}, s: s}
	for i, name := range s.NetworkNames() {
		g.networks = append(g.networks, s.Networks[name])
		g.nets[name] = fmt.Sprintf("net%d", i)
	}
	g.remote = map[string][]*store.Sandbox{}
	for _, name := range s.SandboxNames() {
		sb := s.Sandboxes[name]
		if sb.Remote != "" {
			if g.remote[sb.Remote] == nil {
				g.hosts = append(g.hosts, sb.Remote)
			}
			g.remote[sb.Remote] = append(g.remote[sb.Remote], sb)
			continue
		}
		g.sbs = append(g.sbs, sb)
	}
	sort.Strings(g.hosts)
	return g
}

func portLabel(p store.Port) string {
	ip := "0.0.0.0"
	if p.HostIP.IsValid() {
		ip = p.HostIP.String()
	}
	hp, cp := fmt.Sprint(p.HostPort), fmt.Sprint(p.Port)
	if p.HostPortEnd != p.HostPort {
		hp += fmt.Sprintf("-%d", p.HostPortEnd)
		cp += fmt.Sprintf("-%d", p.PortEnd)
	}
	return fmt.Sprintf("%s:%s → %s/%s", ip, hp, cp, p.Proto)
}

// sandboxLabel carries the details (addresses, veths, ports) so that
// edges stay unlabelled and a graph of many sandboxes stays readable.
func (g *graph) sandboxLabel(sb *store.Sandbox, nl string) string {
	lines := []string{sb.Name}
	switch sb.Mode {
	case store.ModeHost:
		lines = append(lines, "(host network)")
	case store.ModeNone:
		lines = append(lines, "(lo only)")
	}
	for _, ep := range sb.Endpoints {
		var addrs []string
		if n := g.s.Networks[ep.Network]; n != nil {
			addrs = model.EndpointCIDRs(n, ep)
		}
		if sb.Remote != "" {
			lines = append(lines, strings.Join(addrs, " "))
			continue
		}
		lines = append(lines, ep.IfName+" "+strings.Join(addrs, " ")+" ("+ep.HostVeth+")")
	}
	for _, p := range sb.Ports {
		lines = append(lines, "⇐ "+portLabel(p))
	}
	return strings.Join(lines, nl)
}

// groups orders sandboxes by the network of their default route, so that
// each bridge's sandboxes sit together and edges do not cross.
func (g *graph) groups() [][]*store.Sandbox {
	key := func(sb *store.Sandbox) string {
		if ep := model.GatewayEndpoint(g.s, sb); ep != nil {
			return ep.Network
		}
		if len(sb.Endpoints) > 0 {
			return sb.Endpoints[0].Network
		}
		return "~" + sb.Mode
	}
	var out [][]*store.Sandbox
	idx := map[string]int{}
	var keys []string
	for _, n := range g.networks {
		keys = append(keys, n.Name)
	}
	keys = append(keys, "~"+store.ModeHost, "~"+store.ModeNone)
	for _, k := range keys {
		idx[k] = len(out)
		out = append(out, nil)
	}
	for _, sb := range g.sbs {
		i := idx[key(sb)]
		out[i] = append(out[i], sb)
	}
	return out
}

func (g *graph) networkLabel(n *store.Network, nl string) string {
	subnets, gateways := model.Subnets(n)
	head := n.Bridge
	if parent := driver.Parent(n); parent != "" {
		head = n.Driver + " on " + parent // no bridge: ports of the host's link
	}
	if driver.IsGlobal(n) {
		head = n.Bridge + " in " + driver.OverlayNetns(n) + nl + fmt.Sprintf("VXLAN %s (VNI %d, UDP %d)", driver.OverlayVxlan(n), n.VNI, 4789)
	}
	lines := append([]string{head, "network " + n.Name}, subnets...)
	lines = append(lines, "gw "+strings.Join(gateways, " "))
	if n.Internal {
		lines = append(lines, "internal")
	}
	return strings.Join(lines, nl)
}

func (g *graph) hasPorts() bool {
	for _, sb := range g.sbs {
		if len(sb.Ports) > 0 {
			return true
		}
	}
	return false
}

func dotQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// Dot renders the topology in Graphviz's language, left to right: the way
// out, the bridges, the sandboxes; published ports enter from the left.
func Dot(w io.Writer, s *store.State, up *Uplink) {
	g := newGraph(s, up)
	fmt.Fprintln(w, "digraph minidocker_net {")
	fmt.Fprintln(w, `  rankdir=LR; nodesep=0.15; ranksep=1.1;`)
	fmt.Fprintln(w, `  node [fontname="Helvetica", fontsize=10, shape=box, style="rounded,filled", fillcolor="#ffffff"];`)
	fmt.Fprintln(w, `  edge [fontname="Helvetica", fontsize=9, arrowhead=none];`)
	fmt.Fprintln(w, `  subgraph cluster_host { label="host"; style="rounded,dashed"; color="#888888";`)
	if up != nil {
		fmt.Fprintf(w, "    uplink [label=%s, fillcolor=\"#e8e8e8\"];\n", dotQuote("way out: "+up.Name+"\n"+up.Addr+"\n(MASQUERADE)"))
	}
	if g.hasPorts() {
		fmt.Fprintln(w, `    ports [label="published ports\n(DNAT)", fillcolor="#fff3c4"];`)
	}
	for _, n := range g.networks {
		color := "#cfe3ff"
		if n.Internal {
			color = "#f0f0f0"
		}
		fmt.Fprintf(w, "    %s [label=%s, fillcolor=%q];\n", g.nets[n.Name], dotQuote(g.networkLabel(n, "\n")), color)
	}
	fmt.Fprintln(w, "  }")
	for i, h := range g.hosts {
		fmt.Fprintf(w, "  subgraph cluster_remote%d { label=%s; style=\"rounded,dashed\"; color=\"#4a78c2\";\n", i, dotQuote("host "+h))
		for _, sb := range g.remote[h] {
			fmt.Fprintf(w, "    %s [label=%s, fillcolor=\"#dde8f8\"];\n", id("rsb", sb.Name+"_"+h), dotQuote(g.sandboxLabel(sb, "\n")))
		}
		fmt.Fprintln(w, "  }")
		for _, sb := range g.remote[h] {
			for _, ep := range sb.Endpoints {
				fmt.Fprintf(w, "  %s -> %s [label=\"VXLAN\", style=dashed, color=\"#4a78c2\"];\n", g.nets[ep.Network], id("rsb", sb.Name+"_"+h))
			}
		}
	}
	for _, n := range g.networks {
		if up != nil && !n.Internal && !driver.IsGlobal(n) {
			label := "routed"
			if n.Masquerade {
				label = "NAT"
			}
			fmt.Fprintf(w, "  uplink -> %s [label=%q, style=dashed, color=\"#777777\"];\n", g.nets[n.Name], label)
		}
	}
	for i, group := range g.groups() {
		if len(group) == 0 {
			continue
		}
		fmt.Fprintf(w, "  subgraph cluster_group%d { style=invis;\n", i)
		for _, sb := range group {
			fill := "#d9f2d9"
			if sb.Mode != store.ModeBridge {
				fill = "#f4e1f4"
			}
			fmt.Fprintf(w, "    %s [label=%s, fillcolor=%q];\n", id("sb", sb.Name), dotQuote(g.sandboxLabel(sb, "\n")), fill)
		}
		fmt.Fprintln(w, "  }")
	}
	for _, sb := range g.sbs {
		node := id("sb", sb.Name)
		gw := model.GatewayEndpoint(s, sb)
		for _, ep := range sb.Endpoints {
			style := "color=\"#555555\""
			if ep == gw {
				style = "penwidth=2"
			}
			fmt.Fprintf(w, "  %s -> %s [%s];\n", g.nets[ep.Network], node, style)
		}
		if len(sb.Ports) > 0 {
			fmt.Fprintf(w, "  ports -> %s [arrowhead=normal, color=\"#b8860b\", constraint=false];\n", node)
		}
	}
	fmt.Fprintln(w, "}")
}

// Mermaid renders the same topology as a Mermaid flowchart.
func Mermaid(w io.Writer, s *store.State, up *Uplink) {
	g := newGraph(s, up)
	fmt.Fprintln(w, "flowchart LR")
	fmt.Fprintln(w, "  subgraph host")
	if up != nil {
		fmt.Fprintf(w, "    uplink[\"way out: %s<br/>%s<br/>(MASQUERADE)\"]\n", up.Name, up.Addr)
	}
	if g.hasPorts() {
		fmt.Fprintln(w, "    ports[\"published ports<br/>(DNAT)\"]")
	}
	for _, n := range g.networks {
		fmt.Fprintf(w, "    %s[\"%s\"]\n", g.nets[n.Name], g.networkLabel(n, "<br/>"))
	}
	fmt.Fprintln(w, "  end")
	for _, n := range g.networks {
		if up != nil && !n.Internal && !driver.IsGlobal(n) {
			fmt.Fprintf(w, "  uplink -. NAT .- %s\n", g.nets[n.Name])
		}
	}
	for i, h := range g.hosts {
		fmt.Fprintf(w, "  subgraph remote%d[\"host %s\"]\n", i, h)
		for _, sb := range g.remote[h] {
			fmt.Fprintf(w, "    %s(\"%s\")\n", id("rsb", sb.Name+"_"+h), g.sandboxLabel(sb, "<br/>"))
		}
		fmt.Fprintln(w, "  end")
		for _, sb := range g.remote[h] {
			for _, ep := range sb.Endpoints {
				fmt.Fprintf(w, "  %s -. VXLAN .- %s\n", g.nets[ep.Network], id("rsb", sb.Name+"_"+h))
			}
		}
	}
	for _, group := range g.groups() {
		for _, sb := range group {
			node := id("sb", sb.Name)
			fmt.Fprintf(w, "  %s(\"%s\")\n", node, g.sandboxLabel(sb, "<br/>"))
			for _, ep := range sb.Endpoints {
				fmt.Fprintf(w, "  %s --- %s\n", g.nets[ep.Network], node)
			}
			if len(sb.Ports) > 0 {
				fmt.Fprintf(w, "  ports --> %s\n", node)
			}
		}
	}
}

// ErrNoGraphviz says how to get SVG output.
var ErrNoGraphviz = errors.New("graph --format svg needs Graphviz's dot: apt-get install graphviz (or use --format dot or mermaid)")

// SVG renders the topology through Graphviz.
func SVG(w io.Writer, s *store.State, up *Uplink) error {
	dot, err := exec.LookPath("dot")
	if err != nil {
		return ErrNoGraphviz
	}
	var src bytes.Buffer
	Dot(&src, s, up)
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin, cmd.Stdout = &src, w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dot -Tsvg: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
