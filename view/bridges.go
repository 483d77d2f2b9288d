package view

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/vishvananda/netlink"

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/store"
)

// Port is one interface on a bridge and what is at its far end.
type Port struct {
	Name    string
	Up      bool
	Sandbox string // "" when the records do not know it
	IfName  string
	Addr    string
}

// Bridge is one of our bridges as the kernel has it.
type Bridge struct {
	Name    string
	MAC     string
	Up      bool
	Network *store.Network // nil for a bridge the records do not know
	Ports   []Port
}

// Bridges reads our bridges and their ports from the kernel and names the
// far end of each veth from the records.
func Bridges(s *store.State) ([]Bridge, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	byBridge := map[string]*store.Network{}
	for _, n := range s.Networks {
		byBridge[n.Bridge] = n
	}
	type end struct {
		sb *store.Sandbox
		ep *store.Endpoint
	}
	ends := map[string]end{}
	for _, sb := range s.Sandboxes {
		for _, ep := range sb.Endpoints {
			ends[ep.HostVeth] = end{sb, ep}
		}
	}
	var out []Bridge
	index := map[int]int{}
	for _, l := range links {
		a := l.Attrs()
		if l.Type() != "bridge" || (!strings.HasPrefix(a.Name, bridge.Prefix) && byBridge[a.Name] == nil) {
			continue
		}
		index[a.Index] = len(out)
		out = append(out, Bridge{Name: a.Name, MAC: a.HardwareAddr.String(), Up: a.Flags&1 != 0, Network: byBridge[a.Name]})
	}
	for _, l := range links {
		a := l.Attrs()
		i, ok := index[a.MasterIndex]
		if !ok {
			continue
		}
		p := Port{Name: a.Name, Up: a.OperState == netlink.OperUp}
		if e, ok := ends[a.Name]; ok {
			p.Sandbox, p.IfName = e.sb.Name, e.ep.IfName
			if n := s.Networks[e.ep.Network]; n != nil {
				p.Addr = strings.Join(model.EndpointCIDRs(n, e.ep), " ")
			}
		}
		out[i].Ports = append(out[i].Ports, p)
	}
	for _, b := range out {
		sort.Slice(b.Ports, func(i, j int) bool { return b.Ports[i].Sandbox+b.Ports[i].Name < b.Ports[j].Sandbox+b.Ports[j].Name })
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// WriteBridges prints bridges as brctl show does, plus the far end of each
// port, which brctl cannot tell.
func WriteBridges(w io.Writer, bs []Bridge) error {
	tw := tabwriter.NewWriter(w, 8, 1, 2, ' ', 0)
	fmt.Fprintln(tw, "bridge name\tbridge id\tSTP enabled\tinterfaces\tother end of the veth")
	for _, b := range bs {
		id := "8000." + strings.ReplaceAll(b.MAC, ":", "")
		first := true
		row := func(iface, other string) {
			if first {
				fmt.Fprintf(tw, "%s\t%s\tno\t%s\t%s\n", b.Name, id, iface, other)
				first = false
				return
			}
			fmt.Fprintf(tw, "\t\t\t%s\t%s\n", iface, other)
		}
		for _, p := range b.Ports {
			other := "(not in minidocker-net's records)"
			if p.Sandbox != "" {
				other = fmt.Sprintf("sandbox %s, %s %s", p.Sandbox, p.IfName, p.Addr)
			}
			row(p.Name, other)
		}
		if len(b.Ports) == 0 {
			row("", "")
		}
		desc := "(a bridge minidocker-net has no record of: 'minidocker-net doctor')"
		if n := b.Network; n != nil {
			subnets, gateways := model.Subnets(n)
			desc = fmt.Sprintf("network %s: %s, gateway %s on the bridge", n.Name, strings.Join(subnets, " "), strings.Join(gateways, " "))
			if n.Internal {
				desc += ", internal"
			}
		}
		fmt.Fprintf(tw, "\t\t\t\t  ^ %s\n", desc)
	}
	return tw.Flush()
}
