package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/engine"
	"github.com/minidocker-net/minidocker-net/store"
)

func networkCreateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, Value: "bridge", Usage: "network driver (only bridge)"},
		&cli.StringFlag{Name: "subnet", Usage: "subnet in CIDR form, e.g. 172.30.0.0/16 (default: the next free Docker pool)"},
		&cli.StringFlag{Name: "gateway", Usage: "gateway address (default: the subnet's first address)"},
		&cli.StringFlag{Name: "ip-range", Usage: "give sandboxes addresses from this sub-range only"},
		&cli.BoolFlag{Name: "internal", Usage: "no traffic in or out of the subnet"},
		&cli.StringSliceFlag{Name: "opt", Aliases: []string{"o"}, Usage: "driver option KEY=VALUE: com.docker.network.bridge.name (name), ...bridge.enable_icc (icc), ...bridge.enable_ip_masquerade (masquerade), com.docker.network.driver.mtu (mtu)"},
		&cli.StringSliceFlag{Name: "label", Usage: "label KEY=VALUE"},
	}
}

func networkCreate(c *cli.Context) error {
	if err := needArgs(c, 1, "network create [OPTIONS] NETWORK"); err != nil {
		return err
	}
	if c.NArg() > 1 {
		return fmt.Errorf("\"network create\" takes exactly one network name, got %d arguments: put options before the name", c.NArg())
	}
	n, err := eng(c).CreateNetwork(engine.NetworkRequest{
		Name: c.Args().First(), Driver: c.String("driver"), Subnet: c.String("subnet"), Gateway: c.String("gateway"),
		IPRange: c.String("ip-range"), Internal: c.Bool("internal"), Options: c.StringSlice("opt"), Labels: c.StringSlice("label"),
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
					&cli.StringFlag{Name: "format", Usage: "table (default) or json"},
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only IDs"},
					&cli.BoolFlag{Name: "no-trunc", Usage: "full IDs"},
				}},
				{Name: "inspect", Usage: "show networks as Docker-shaped JSON", ArgsUsage: "NETWORK...", Action: networkInspect},
				{Name: "rm", Aliases: []string{"remove"}, Usage: "remove networks: undo exactly what create did", ArgsUsage: "NETWORK...", Action: networkRm},
				{Name: "prune", Usage: "remove every network without sandboxes", Action: networkPrune, Flags: []cli.Flag{
					&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "accepted for Docker compatibility; minidocker-net never asks"},
				}},
				{Name: "connect", Usage: "attach a sandbox to a network", ArgsUsage: "NETWORK SANDBOX", Action: networkConnect, Flags: []cli.Flag{
					&cli.StringFlag{Name: "ip", Usage: "IPv4 address (networks created with --subnet)"},
					&cli.StringSliceFlag{Name: "alias", Usage: "extra name on this network"},
					&cli.IntFlag{Name: "gw-priority", Usage: "the highest priority network carries the default route"},
				}},
				{Name: "disconnect", Usage: "detach a sandbox from a network", ArgsUsage: "NETWORK SANDBOX", Action: networkDisconnect},
			},
		},
		{Name: "create", Usage: "shortcut for 'network create'", ArgsUsage: "NETWORK", Flags: networkCreateFlags(), Action: networkCreate},
	}
}

// builtinID gives the host and none networks stable IDs.
func builtinID(name string) string {
	sum := sha256.Sum256([]byte("minidocker-net " + name))
	return hex.EncodeToString(sum[:])
}

type lsRow struct {
	ID       string            `json:"ID"`
	Name     string            `json:"Name"`
	Driver   string            `json:"Driver"`
	Scope    string            `json:"Scope"`
	Subnet   string            `json:"Subnet"`
	Gateway  string            `json:"Gateway"`
	Bridge   string            `json:"Bridge"`
	Internal bool              `json:"Internal"`
	Created  string            `json:"CreatedAt"`
	Labels   map[string]string `json:"Labels"`
}

func lsRows(s *store.State) []lsRow {
	var rows []lsRow
	for _, name := range s.NetworkNames() {
		n := s.Networks[name]
		rows = append(rows, lsRow{ID: n.ID, Name: n.Name, Driver: "bridge", Scope: "local", Subnet: n.Subnet.String(),
			Gateway: n.Gateway.String(), Bridge: n.Bridge, Internal: n.Internal, Created: n.Created.Format(time.RFC3339Nano), Labels: n.Labels})
	}
	rows = append(rows,
		lsRow{ID: builtinID("host"), Name: "host", Driver: "host", Scope: "local"},
		lsRow{ID: builtinID("none"), Name: "none", Driver: "null", Scope: "local"})
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows
}

func networkLs(c *cli.Context) error {
	return eng(c).View(func(s *store.State) error {
		rows := lsRows(s)
		w := c.App.Writer
		trunc := func(id string) string {
			if c.Bool("no-trunc") {
				return id
			}
			return id[:12]
		}
		switch {
		case c.Bool("quiet"):
			for _, r := range rows {
				fmt.Fprintln(w, trunc(r.ID))
			}
		case c.String("format") == "json":
			enc := json.NewEncoder(w)
			for _, r := range rows {
				r.ID = trunc(r.ID)
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
		case c.String("format") == "" || c.String("format") == "table":
			tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE\tSUBNET\tBRIDGE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", trunc(r.ID), r.Name, r.Driver, r.Scope, r.Subnet, r.Bridge)
			}
			return tw.Flush()
		default:
			return fmt.Errorf("unknown --format %q: use table or json", c.String("format"))
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
	} `json:"MinidockerNet"`
}

func inspectNetwork(s *store.State, name string) (netInspect, bool) {
	var out netInspect
	out.Scope, out.Containers, out.Options, out.Labels = "local", map[string]netContainer{}, map[string]string{}, map[string]string{}
	out.IPAM.Driver, out.IPAM.Options, out.IPAM.Config = "default", map[string]string{}, []ipamConfig{}
	if name == "host" || name == "none" {
		out.Name, out.ID, out.Driver = name, builtinID(name), map[string]string{"host": "host", "none": "null"}[name]
		out.Created = time.Unix(0, 0).UTC().Format(time.RFC3339Nano)
		for _, sbn := range s.SandboxNames() {
			if sb := s.Sandboxes[sbn]; sb.Mode == name {
				out.Containers[sb.ID] = netContainer{Name: sb.Name, EndpointID: builtinID(sb.ID)}
			}
		}
		return out, true
	}
	n, ok := s.Networks[name]
	if !ok {
		return out, false
	}
	out.Name, out.ID, out.Created, out.Driver = n.Name, n.ID, n.Created.Format(time.RFC3339Nano), "bridge"
	out.EnableIPv4, out.Internal = true, n.Internal
	cfg := ipamConfig{Subnet: n.Subnet.String(), Gateway: n.Gateway.String()}
	if n.IPRange.IsValid() {
		cfg.IPRange = n.IPRange.String()
	}
	out.IPAM.Config = []ipamConfig{cfg}
	for _, sb := range s.Attached(n.Name) {
		ep := sb.Endpoint(n.Name)
		out.Containers[sb.ID] = netContainer{Name: sb.Name, EndpointID: ep.ID, MacAddress: ep.MAC,
			IPv4Address: fmt.Sprintf("%s/%d", ep.IP, n.Subnet.Bits())}
	}
	for k, v := range n.Options {
		out.Options[k] = v
	}
	for k, v := range n.Labels {
		out.Labels[k] = v
	}
	out.MinidockerNet.Bridge = n.Bridge
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
	if err := needArgs(c, 1, "network inspect NETWORK [NETWORK...]"); err != nil {
		return err
	}
	return eng(c).View(func(s *store.State) error {
		out := []netInspect{}
		var missing []error
		for _, name := range c.Args().Slice() {
			if n, ok := inspectNetwork(s, name); ok {
				out = append(out, n)
			} else {
				missing = append(missing, &engine.NotFoundError{Kind: "network", Name: name})
			}
		}
		if err := writeJSON(c.App.Writer, out); err != nil {
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
	if c.NArg() != 2 {
		return errors.New("\"network connect\" requires exactly 2 arguments.\nUsage:  minidocker-net network connect [OPTIONS] NETWORK SANDBOX")
	}
	return eng(c).Connect(engine.ConnectRequest{Network: c.Args().Get(0), Sandbox: c.Args().Get(1),
		IP: c.String("ip"), Aliases: c.StringSlice("alias"), GwPriority: c.Int("gw-priority")})
}

func networkDisconnect(c *cli.Context) error {
	if c.NArg() != 2 {
		return errors.New("\"network disconnect\" requires exactly 2 arguments.\nUsage:  minidocker-net network disconnect NETWORK SANDBOX")
	}
	return eng(c).Disconnect(c.Args().Get(0), c.Args().Get(1))
}
