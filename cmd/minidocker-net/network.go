package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/engine"
	"github.com/minidocker-net/minidocker-net/format"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/store"
)

func networkCreateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, Value: "bridge", Usage: "network driver (bridge)"},
		&cli.StringSliceFlag{Name: "subnet", Usage: "subnet in CIDR form, e.g. 172.30.0.0/16, and with --ipv6 an IPv6 one, e.g. fd00:db8::/64 (default: the next free Docker pool; for IPv6 a /64 of the host's ULA /48)"},
		&cli.StringSliceFlag{Name: "gateway", Usage: "gateway address, one per family (default: the subnet's first address)"},
		&cli.StringSliceFlag{Name: "ip-range", Usage: "give sandboxes addresses from this sub-range only, one per family"},
		&cli.BoolFlag{Name: "ipv6", Usage: "IPv6 beside IPv4: addresses, routes, ip6tables rules"},
		&cli.BoolFlag{Name: "ipv4", Value: true, Usage: "IPv4 (--ipv4=false with --ipv6: an IPv6-only network)"},
		&cli.BoolFlag{Name: "internal", Usage: "no traffic in or out of the subnet"},
		&cli.StringSliceFlag{Name: "opt", Aliases: []string{"o"}, Usage: "driver option KEY=VALUE: com.docker.network.bridge.name (name), ...bridge.enable_icc (icc), ...bridge.enable_ip_masquerade (masquerade), com.docker.network.driver.mtu (mtu)"},
		&cli.StringSliceFlag{Name: "label", Usage: "label KEY=VALUE"},
	}
}

func networkCreate(c *cli.Context) error {
	if err := needArgs(c, 1, "network create [OPTIONS] NETWORK"); err != nil {
		return err
	}
	if err := exactArgs(c, 1, "network create [OPTIONS] NETWORK"); err != nil {
		return err
	}
	n, err := eng(c).CreateNetwork(engine.NetworkRequest{
		Name: c.Args().First(), Driver: c.String("driver"), Subnets: c.StringSlice("subnet"), Gateways: c.StringSlice("gateway"),
		IPRanges: c.StringSlice("ip-range"), IPv6: c.Bool("ipv6"), NoIPv4: !c.Bool("ipv4"), Internal: c.Bool("internal"), Options: c.StringSlice("opt"), Labels: c.StringSlice("label"),
	})
	if err != nil || c.Bool("dry-run") {
		return err
	}
	fmt.Fprintln(c.App.Writer, n.ID)
	return nil
}

func networkCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name: "network", Usage: "manage networks (docker network ...)",
			Subcommands: []*cli.Command{
				{Name: "create", Usage: "create a network: a bridge, its address, sysctls and iptables rules", ArgsUsage: "NETWORK", Flags: networkCreateFlags(), Action: networkCreate},
				{Name: "ls", Aliases: []string{"list"}, Usage: "list networks", Action: networkLs, Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Usage: "table (default), json, or a Go template (fields: .ID .Name .Driver .Scope .IPv4 .IPv6 .Internal .Labels .Label \"KEY\" .CreatedAt .Subnet .Gateway .Bridge)"},
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only IDs"},
					&cli.BoolFlag{Name: "no-trunc", Usage: "full IDs"},
					&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "driver=, id=, label=, name=, scope=, type=custom|builtin"},
				}},
				{Name: "inspect", Usage: "show networks as Docker-shaped JSON", ArgsUsage: "NETWORK...", Action: networkInspect, Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "a Go template over the JSON, e.g. '{{range .IPAM.Config}}{{.Subnet}}{{end}}'"},
				}},
				{Name: "rm", Aliases: []string{"remove"}, Usage: "remove networks: undo exactly what create did", ArgsUsage: "NETWORK...", Action: networkRm},
				{Name: "prune", Usage: "remove every network without sandboxes", Action: networkPrune, Flags: []cli.Flag{
					&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "accepted for Docker compatibility; minidocker-net never asks"},
				}},
				{Name: "connect", Usage: "attach a sandbox to a network", ArgsUsage: "NETWORK SANDBOX", Action: networkConnect, Flags: []cli.Flag{
					&cli.StringFlag{Name: "ip", Usage: "IPv4 address (networks created with --subnet)"},
					&cli.StringFlag{Name: "ip6", Usage: "IPv6 address (networks created with --ipv6 and an IPv6 --subnet)"},
					&cli.StringSliceFlag{Name: "alias", Usage: "extra name on this network"},
					&cli.IntFlag{Name: "gw-priority", Usage: "the highest priority network carries the default route"},
				}},
				{Name: "disconnect", Usage: "detach a sandbox from a network", ArgsUsage: "NETWORK SANDBOX", Action: networkDisconnect},
			},
		},
		{Name: "create", Usage: "shortcut for 'network create'", ArgsUsage: "NETWORK", Flags: networkCreateFlags(), Action: networkCreate},
	}
}

// lsRow is one network as network ls shows it: Docker's fields (as its
// --format names them), and where it lives on the host.
type lsRow struct {
	ID        string `json:"ID"`
	Name      string `json:"Name"`
	Driver    string `json:"Driver"`
	Scope     string `json:"Scope"`
	IPv4      string `json:"IPv4"`
	IPv6      string `json:"IPv6"`
	Internal  string `json:"Internal"`
	Labels    string `json:"Labels"`
	CreatedAt string `json:"CreatedAt"`
	Subnet    string `json:"Subnet"`
	Gateway   string `json:"Gateway"`
	Bridge    string `json:"Bridge"`
	labels    map[string]string
}

// Label returns one label's value, as Docker's {{.Label "k"}}.
func (r lsRow) Label(k string) string { return r.labels[k] }

var lsHeader = map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
	"Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT", "Subnet": "SUBNET", "Gateway": "GATEWAY", "Bridge": "BRIDGE"}

func lsRows(s *store.State, trunc bool) []lsRow {
	id := func(v string) string {
		if trunc {
			return v[:12]
		}
		return v
	}
	var rows []lsRow
	for _, name := range s.NetworkNames() {
		n := s.Networks[name]
		subnets, gateways := model.Subnets(n)
		rows = append(rows, lsRow{ID: id(n.ID), Name: n.Name, Driver: n.Driver, Scope: scope(n), IPv4: fmt.Sprint(!n.NoIPv4), IPv6: fmt.Sprint(n.IPv6),
			Internal: fmt.Sprint(n.Internal), Labels: labelText(n.Labels), CreatedAt: n.Created.Format("2006-01-02 15:04:05.999999999 -0700 MST"),
			Subnet: strings.Join(subnets, ","), Gateway: strings.Join(gateways, ","), Bridge: n.Bridge, labels: n.Labels})
	}
	for _, b := range []struct{ name, driver string }{{"host", "host"}, {"none", "null"}} {
		rows = append(rows, lsRow{ID: id(model.BuiltinID(b.name)), Name: b.name, Driver: b.driver, Scope: "local", IPv4: "false", IPv6: "false", Internal: "false"})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows
}

// lsMatches applies network ls --filter as Docker's: name is a substring,
// id a prefix, type custom or builtin.
func lsMatches(f format.Filters, r lsRow, fullID string) bool {
	builtin := model.Predefined(r.Name)
	return f.Match("name", func(v string) bool { return strings.Contains(r.Name, v) }) &&
		f.Match("id", func(v string) bool { return strings.HasPrefix(fullID, v) }) &&
		f.Match("driver", func(v string) bool { return v == r.Driver }) &&
		f.Match("scope", func(v string) bool { return v == r.Scope }) &&
		f.Match("label", func(v string) bool { return format.Labels(r.labels, v) }) &&
		f.Match("type", func(v string) bool { return v == "builtin" && builtin || v == "custom" && !builtin })
}

func networkLs(c *cli.Context) error {
	filters, err := format.ParseFilters(c.StringSlice("filter"), "driver", "id", "label", "name", "scope", "type")
	if err != nil {
		return err
	}
	tmpl, err := templateOf(c)
	if err != nil {
		return err
	}
	e := eng(c)
	return e.View(func(s *store.State) error {
		s = e.Listed(s)
		full := lsRows(s, false)
		var rows []lsRow
		for i, r := range lsRows(s, !c.Bool("no-trunc")) {
			if lsMatches(filters, r, full[i].ID) {
				rows = append(rows, r)
			}
		}
		w := c.App.Writer
		switch {
		case c.Bool("quiet"):
			for _, r := range rows {
				fmt.Fprintln(w, r.ID)
			}
		case tmpl != nil:
			var any []any
			for _, r := range rows {
				any = append(any, r)
			}
			return tmpl.Write(w, any, lsHeader)
		default:
			tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE\tSUBNET\tBRIDGE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Driver, r.Scope, r.Subnet, r.Bridge)
			}
			return tw.Flush()
		}
		return nil
	})
}

// Docker's network inspect shape (api/types/network), field order kept.
type ipamConfig struct {
	Subnet  string `json:"Subnet"`
	IPRange string `json:"IPRange,omitempty"`
	Gateway string `json:"Gateway"`
}

type netContainer struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

type netInspect struct {
	Name       string `json:"Name"`
	ID         string `json:"Id"`
	Created    string `json:"Created"`
	Scope      string `json:"Scope"`
	Driver     string `json:"Driver"`
	EnableIPv4 bool   `json:"EnableIPv4"`
	EnableIPv6 bool   `json:"EnableIPv6"`
	IPAM       struct {
		Driver  string            `json:"Driver"`
		Options map[string]string `json:"Options"`
		Config  []ipamConfig      `json:"Config"`
	} `json:"IPAM"`
	Internal   bool `json:"Internal"`
	Attachable bool `json:"Attachable"`
	Ingress    bool `json:"Ingress"`
	ConfigFrom struct {
		Network string `json:"Network"`
	} `json:"ConfigFrom"`
	ConfigOnly bool                    `json:"ConfigOnly"`
	Containers map[string]netContainer `json:"Containers"`
	Options    map[string]string       `json:"Options"`
	Labels     map[string]string       `json:"Labels"`
	// Not in Docker's output: where to look on the host.
	MinidockerNet struct {
		Bridge string `json:"Bridge,omitempty"`
		// An overlay network's part on this host: its namespace and
		// VXLAN device (VNI).
		Netns string `json:"Netns,omitempty"`
		Vxlan string `json:"Vxlan,omitempty"`
		VNI   int    `json:"VNI,omitempty"`
	} `json:"MinidockerNet"`
}

func inspectNetwork(s *store.State, ref string) (netInspect, bool) {
	var out netInspect
	name, err := model.NetworkName(s, ref)
	if err != nil {
		return out, false
	}
	out.Scope, out.Containers, out.Options, out.Labels = "local", map[string]netContainer{}, map[string]string{}, map[string]string{}
	out.IPAM.Driver, out.IPAM.Options, out.IPAM.Config = "default", map[string]string{}, []ipamConfig{}
	if name == "host" || name == "none" {
		out.Name, out.ID, out.Driver = name, model.BuiltinID(name), map[string]string{"host": "host", "none": "null"}[name]
		out.Created = time.Unix(0, 0).UTC().Format(time.RFC3339Nano)
		for _, sbn := range s.SandboxNames() {
			if sb := s.Sandboxes[sbn]; sb.Mode == name {
				out.Containers[sb.ID] = netContainer{Name: sb.Name, EndpointID: model.BuiltinID(sb.ID)}
			}
		}
		return out, true
	}
	n, ok := s.Networks[name]
	if !ok {
		return out, false
	}
	out.Name, out.ID, out.Created, out.Driver, out.Scope = n.Name, n.ID, n.Created.Format(time.RFC3339Nano), n.Driver, scope(n)
	out.EnableIPv4, out.Internal = !n.NoIPv4, n.Internal
	if !n.NoIPv4 {
		cfg := ipamConfig{Subnet: n.Subnet.String(), Gateway: n.Gateway.String()}
		if n.IPRange.IsValid() {
			cfg.IPRange = n.IPRange.String()
		}
		out.IPAM.Config = []ipamConfig{cfg}
	}
	if out.EnableIPv6 = n.IPv6; n.IPv6 {
		cfg6 := ipamConfig{Subnet: n.Subnet6.String(), Gateway: n.Gateway6.String()}
		if n.IPRange6.IsValid() {
			cfg6.IPRange = n.IPRange6.String()
		}
		out.IPAM.Config = append(out.IPAM.Config, cfg6)
	}
	for _, sb := range s.Attached(n.Name) {
		ep := sb.Endpoint(n.Name)
		c := netContainer{Name: sb.Name, EndpointID: ep.ID, MacAddress: ep.MAC}
		if ep.IP.IsValid() {
			c.IPv4Address = fmt.Sprintf("%s/%d", ep.IP, n.Subnet.Bits())
		}
		if ep.IP6.IsValid() {
			c.IPv6Address = fmt.Sprintf("%s/%d", ep.IP6, n.Subnet6.Bits())
		}
		out.Containers[sb.ID] = c
	}
	for k, v := range n.Options {
		out.Options[k] = v
	}
	for k, v := range n.Labels {
		out.Labels[k] = v
	}
	out.MinidockerNet.Bridge = n.Bridge
	if driver.IsGlobal(n) {
		out.MinidockerNet.Netns, out.MinidockerNet.Vxlan, out.MinidockerNet.VNI = driver.OverlayNetns(n), driver.OverlayVxlan(n), n.VNI
	}
	return out, true
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func networkInspect(c *cli.Context) error {
	if err := needArgs(c, 1, "network inspect [-f FORMAT] NETWORK [NETWORK...]"); err != nil {
		return err
	}
	tmpl, err := templateOf(c)
	if err != nil {
		return err
	}
	e := eng(c)
	return e.View(func(s *store.State) error {
		s = e.Listed(s)
		var out []any
		var missing []error
		for _, name := range c.Args().Slice() {
			if n, ok := inspectNetwork(s, name); ok {
				out = append(out, n)
			} else {
				_, err := model.NetworkName(s, name)
				missing = append(missing, err)
			}
		}
		if err := writeInspect(c, out, tmpl); err != nil {
			return err
		}
		return errors.Join(missing...)
	})
}

// eachName runs fn for every argument, printing the names that succeeded
// as Docker does, and fails if any failed.
func eachName(c *cli.Context, fn func(string) error) error {
	var errs []error
	for _, name := range c.Args().Slice() {
		if err := fn(name); err != nil {
			errs = append(errs, err)
			continue
		}
		if !c.Bool("dry-run") {
			fmt.Fprintln(c.App.Writer, name)
		}
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "\nError: "))
	}
	return nil
}

func networkRm(c *cli.Context) error {
	if err := needArgs(c, 1, "network rm NETWORK [NETWORK...]"); err != nil {
		return err
	}
	e := eng(c)
	return eachName(c, e.RemoveNetwork)
}

func networkPrune(c *cli.Context) error {
	removed, err := eng(c).PruneNetworks()
	if err != nil || c.Bool("dry-run") {
		return err
	}
	if len(removed) > 0 {
		fmt.Fprintln(c.App.Writer, "Deleted Networks:")
		for _, n := range removed {
			fmt.Fprintln(c.App.Writer, n)
		}
	}
	return nil
}

func networkConnect(c *cli.Context) error {
	if err := exactArgs(c, 2, "network connect [OPTIONS] NETWORK SANDBOX"); err != nil {
		return err
	}
	return eng(c).Connect(engine.ConnectRequest{Network: c.Args().Get(0), Sandbox: c.Args().Get(1),
		IP: c.String("ip"), IP6: c.String("ip6"), Aliases: c.StringSlice("alias"), GwPriority: c.Int("gw-priority")})
}

func networkDisconnect(c *cli.Context) error {
	if err := exactArgs(c, 2, "network disconnect NETWORK SANDBOX"); err != nil {
		return err
	}
	return eng(c).Disconnect(c.Args().Get(0), c.Args().Get(1))
}

// scope is Docker's: local, or global for the cluster's overlay networks.
func scope(n *store.Network) string {
	if n.Scope != "" {
		return n.Scope
	}
	return "local"
}
