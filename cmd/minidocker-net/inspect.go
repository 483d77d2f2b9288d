package main

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/engine"
	"github.com/minidocker-net/minidocker-net/format"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/store"
)

func portsText(s *store.State, sb *store.Sandbox) string {
	var out []string
	for _, p := range sb.Ports {
		for _, host := range model.HostAddrs(s, sb, p) {
			out = append(out, fmt.Sprintf("%s:%s->%s/%s", host, rangeText(p.HostPort, p.HostPortEnd), rangeText(p.Port, p.PortEnd), p.Proto))
		}
	}
	return strings.Join(out, ", ")
}

func rangeText(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

// dnsText says who answers a sandbox's names.
func dnsText(e *engine.Engine, s *store.State, sb *store.Sandbox) string {
	switch {
	case !model.DNSServed(s, sb):
		return "none: the sandbox is on no user-defined network (resolv.conf names the host's servers)"
	case e.ResolverPid() == 0:
		return "not served: the embedded DNS is not running ('minidocker-net doctor')"
	}
	return fmt.Sprintf("the embedded DNS (pid %d) at %s, port %d inside the sandbox", e.ResolverPid(), model.ResolverIP, model.DNSPort(sb))
}

// psRow is one sandbox as ps --format sees it: Docker's fields, and ours.
type psRow struct {
	ID          string
	Names       string
	Command     string
	CreatedAt   string
	RunningFor  string
	Ports       string
	State       string
	Status      string
	Networks    string
	IPAddresses string
	Processes   string
	Labels      string
	DNS         string
	labels      map[string]string
}

// Label returns one label's value, as Docker's {{.Label "k"}}.
func (r psRow) Label(k string) string { return r.labels[k] }

var psFields = []string{".ID", ".Names", ".Command", ".CreatedAt", ".RunningFor", ".Ports", ".State", ".Status", ".Networks", ".IPAddresses", ".DNS", ".Labels", `.Label "KEY"`}

var psHeader = map[string]string{"ID": "SANDBOX ID", "Names": "NAMES", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
	"Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Networks": "NETWORKS", "IPAddresses": "IP ADDRESSES", "Processes": "PROCESSES", "Labels": "LABELS", "DNS": "DNS"}

func labelText(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// state is Docker's word for what runs in a sandbox.
func state(sb *store.Sandbox, procs int) string {
	switch {
	case procs > 0:
		return "running"
	case len(sb.Cmd) > 0:
		return "exited"
	}
	return "created"
}

func newPsRow(s *store.State, sb *store.Sandbox, trunc, resolverUp bool) (psRow, error) {
	ps, err := engine.Processes(sb)
	if err != nil {
		return psRow{}, err
	}
	gw := model.GatewayEndpoint(s, sb)
	var nets, ips []string
	for _, ep := range sb.Endpoints {
		n := ep.Network
		if gw == ep {
			n += " (gw)"
		}
		nets = append(nets, n)
		if ep.IP.IsValid() {
			ips = append(ips, ep.IP.String())
		}
		if ep.IP6.IsValid() {
			ips = append(ips, ep.IP6.String())
		}
	}
	if sb.Mode != store.ModeBridge {
		nets = []string{sb.Mode}
	}
	procs := "none"
	if len(ps) > 0 {
		procs = fmt.Sprintf("%d: %s", len(ps), ps[0].Command)
		if len(procs) > 40 {
			procs = procs[:37] + "..."
		}
	}
	id := sb.ID
	if trunc {
		id = id[:12]
	}
	r := psRow{ID: id, Names: sb.Name, Command: strconv.Quote(strings.Join(sb.Cmd, " ")), CreatedAt: sb.Created.Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: ago(sb.Created), Ports: portsText(s, sb), State: state(sb, len(ps)), Networks: strings.Join(nets, ", "),
		IPAddresses: strings.Join(ips, ", "), Processes: procs, Labels: labelText(sb.Labels), labels: sb.Labels}
	switch {
	case model.DNSServed(s, sb) && resolverUp:
		r.DNS = model.ResolverIP.String()
	case model.DNSServed(s, sb):
		r.DNS = "not served"
	}
	switch r.State {
	case "running":
		r.Status = "Up " + strings.TrimSuffix(strings.ToLower(ago(sb.Created)), " ago")
	case "exited":
		r.Status = "Exited"
	default:
		r.Status = "Created"
	}
	return r, nil
}

// psMatches applies ps --filter to a sandbox, as Docker's: name is a
// regular expression, id a prefix.
func psMatches(f format.Filters, s *store.State, sb *store.Sandbox, r psRow) bool {
	return f.Match("name", func(v string) bool {
		re, err := regexp.Compile(v)
		return err == nil && re.MatchString(sb.Name)
	}) && f.Match("id", func(v string) bool { return strings.HasPrefix(sb.ID, v) }) &&
		f.Match("label", func(v string) bool { return format.Labels(sb.Labels, v) }) &&
		f.Match("status", func(v string) bool { return v == r.State }) &&
		f.Match("network", func(v string) bool {
			name, err := model.NetworkName(s, v)
			return err == nil && (sb.Endpoint(name) != nil || sb.Mode == name)
		})
}

func psCmd(c *cli.Context) error {
	filters, err := format.ParseFilters(c.StringSlice("filter"), "name", "id", "label", "network", "status")
	if err != nil {
		return err
	}
	tmpl, err := templateOf(c)
	if err != nil {
		return err
	}
	e := eng(c)
	up := e.ResolverPid() != 0
	return e.View(func(s *store.State) error {
		var rows []any
		for _, name := range s.SandboxNames() {
			sb := s.Sandboxes[name]
			r, err := newPsRow(s, sb, !c.Bool("no-trunc"), up)
			if err != nil {
				return err
			}
			if psMatches(filters, s, sb, r) {
				rows = append(rows, r)
			}
		}
		w := c.App.Writer
		switch {
		case c.Bool("quiet"):
			for _, r := range rows {
				fmt.Fprintln(w, r.(psRow).Names)
			}
			return nil
		case tmpl != nil:
			return tmpl.Write(w, rows, psHeader)
		}
		tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tNETWORKS\tIP ADDRESSES\tPORTS\tPROCESSES")
		for _, x := range rows {
			r := x.(psRow)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Names, r.Networks, r.IPAddresses, r.Ports, r.Processes)
		}
		return tw.Flush()
	})
}

type portBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type epSettings struct {
	IPAMConfig          map[string]string `json:"IPAMConfig"`
	Links               []string          `json:"Links"`
	Aliases             []string          `json:"Aliases"`
	MacAddress          string            `json:"MacAddress"`
	DriverOpts          map[string]string `json:"DriverOpts"`
	GwPriority          int               `json:"GwPriority"`
	NetworkID           string            `json:"NetworkID"`
	EndpointID          string            `json:"EndpointID"`
	Gateway             string            `json:"Gateway"`
	IPAddress           string            `json:"IPAddress"`
	IPPrefixLen         int               `json:"IPPrefixLen"`
	IPv6Gateway         string            `json:"IPv6Gateway"`
	GlobalIPv6Address   string            `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int               `json:"GlobalIPv6PrefixLen"`
	DNSNames            []string          `json:"DNSNames"`
}

type sbInspect struct {
	ID      string   `json:"Id"`
	Created string   `json:"Created"`
	Path    string   `json:"Path"`
	Args    []string `json:"Args"`
	State   struct {
		Status  string `json:"Status"`
		Running bool   `json:"Running"`
		Pid     int    `json:"Pid"`
	} `json:"State"`
	ResolvConfPath string `json:"ResolvConfPath"`
	HostnamePath   string `json:"HostnamePath"`
	HostsPath      string `json:"HostsPath"`
	LogPath        string `json:"LogPath"`
	Name           string `json:"Name"`
	HostConfig     struct {
		NetworkMode  string                   `json:"NetworkMode"`
		PortBindings map[string][]portBinding `json:"PortBindings"`
		AutoRemove   bool                     `json:"AutoRemove"`
		ExtraHosts   []string                 `json:"ExtraHosts"`
	} `json:"HostConfig"`
	Config struct {
		Hostname     string              `json:"Hostname"`
		Env          []string            `json:"Env"`
		Cmd          []string            `json:"Cmd"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Labels       map[string]string   `json:"Labels"`
	} `json:"Config"`
	NetworkSettings struct {
		SandboxID           string                   `json:"SandboxID"`
		SandboxKey          string                   `json:"SandboxKey"`
		Ports               map[string][]portBinding `json:"Ports"`
		Gateway             string                   `json:"Gateway"`
		IPAddress           string                   `json:"IPAddress"`
		IPPrefixLen         int                      `json:"IPPrefixLen"`
		MacAddress          string                   `json:"MacAddress"`
		IPv6Gateway         string                   `json:"IPv6Gateway"`
		GlobalIPv6Address   string                   `json:"GlobalIPv6Address"`
		GlobalIPv6PrefixLen int                      `json:"GlobalIPv6PrefixLen"`
		Networks            map[string]epSettings    `json:"Networks"`
	} `json:"NetworkSettings"`
	// Not in Docker's output: what carries the default route, and the
	// host end of each interface.
	MinidockerNet struct {
		GatewayNetwork string            `json:"GatewayNetwork"`
		HostVeths      map[string]string `json:"HostVeths"`
		DNS            string            `json:"DNS"` // who answers at 127.0.0.11
	} `json:"MinidockerNet"`
}

func inspectSandbox(e *engine.Engine, s *store.State, sb *store.Sandbox) (sbInspect, error) {
	var out sbInspect
	out.ID, out.Created, out.Name = sb.ID, sb.Created.Format(time.RFC3339Nano), "/"+sb.Name
	out.Args = []string{}
	if len(sb.Cmd) > 0 {
		out.Path, out.Args = sb.Cmd[0], sb.Cmd[1:]
	}
	ps, err := engine.Processes(sb)
	if err != nil {
		return out, err
	}
	switch {
	case len(ps) > 0:
		out.State.Status, out.State.Running, out.State.Pid = "running", true, ps[0].Pid
	case len(sb.Cmd) > 0:
		out.State.Status = "exited"
	default:
		out.State.Status = "created"
	}
	if sb.Mode != store.ModeHost {
		out.ResolvConfPath, out.HostnamePath, out.HostsPath, out.NetworkSettings.SandboxKey = engine.SandboxFiles(sb.Name)
	}
	out.LogPath = e.Paths().LogFile(sb.Name)
	out.HostConfig.NetworkMode = sb.Mode
	if len(sb.Endpoints) > 0 {
		out.HostConfig.NetworkMode = sb.Endpoints[0].Network
	}
	out.HostConfig.AutoRemove = sb.AutoRemove
	out.HostConfig.ExtraHosts = []string{}
	for _, h := range sb.ExtraHosts {
		ip := "host-gateway"
		if h.IP.IsValid() {
			ip = h.IP.String()
		}
		out.HostConfig.ExtraHosts = append(out.HostConfig.ExtraHosts, h.Name+":"+ip)
	}
	out.Config.Hostname, out.Config.Cmd, out.Config.Env = sb.Hostname, sb.Cmd, sb.Env
	out.Config.Labels = map[string]string{}
	for k, v := range sb.Labels {
		out.Config.Labels[k] = v
	}
	out.Config.ExposedPorts = map[string]struct{}{}
	for _, x := range sb.Exposed {
		out.Config.ExposedPorts[x] = struct{}{}
	}
	for _, p := range sb.Ports {
		for i := 0; i <= p.PortEnd-p.Port; i++ {
			out.Config.ExposedPorts[fmt.Sprintf("%d/%s", p.Port+i, p.Proto)] = struct{}{}
		}
	}
	out.HostConfig.PortBindings, out.NetworkSettings.Ports = map[string][]portBinding{}, map[string][]portBinding{}
	for _, p := range sb.Ports {
		for i := 0; i <= p.PortEnd-p.Port; i++ {
			key := fmt.Sprintf("%d/%s", p.Port+i, p.Proto)
			hp := strconv.Itoa(p.HostPort + i)
			// In effect: on each address it answers on (none on internal
			// networks only), written without brackets as Docker's HostIp.
			for _, host := range model.HostAddrs(s, sb, p) {
				b := portBinding{HostIP: strings.Trim(host, "[]"), HostPort: hp}
				out.NetworkSettings.Ports[key] = append(out.NetworkSettings.Ports[key], b)
			}
			b := portBinding{HostPort: hp}
			if p.HostIP.IsValid() {
				b.HostIP = p.HostIP.String()
			}
			out.HostConfig.PortBindings[key] = append(out.HostConfig.PortBindings[key], b)
		}
	}
	out.MinidockerNet.DNS = dnsText(e, s, sb)
	out.NetworkSettings.SandboxID = sb.ID
	out.NetworkSettings.Networks = map[string]epSettings{}
	out.MinidockerNet.HostVeths = map[string]string{}
	gw := model.GatewayEndpoint(s, sb)
	for _, ep := range sb.Endpoints {
		n := s.Networks[ep.Network]
		es := epSettings{Aliases: ep.Aliases, MacAddress: ep.MAC, GwPriority: ep.GwPriority, NetworkID: ep.NetworkID,
			EndpointID: ep.ID, DNSNames: append(append([]string{sb.Name}, ep.Aliases...), sb.ID[:12])}
		if ep.IP.IsValid() { // not on an IPv6-only network: Docker's "" and 0 then
			es.Gateway, es.IPAddress, es.IPPrefixLen = n.Gateway.String(), ep.IP.String(), n.Subnet.Bits()
		}
		if ep.StaticIP {
			es.IPAMConfig = map[string]string{"IPv4Address": ep.IP.String()}
		}
		if ep.IP6.IsValid() {
			es.IPv6Gateway, es.GlobalIPv6Address, es.GlobalIPv6PrefixLen = n.Gateway6.String(), ep.IP6.String(), n.Subnet6.Bits()
		}
		if n.Default {
			es.DNSNames = nil
		}
		out.NetworkSettings.Networks[ep.Network] = es
		out.MinidockerNet.HostVeths[ep.IfName] = ep.HostVeth
		if ep == gw {
			out.NetworkSettings.Gateway, out.NetworkSettings.IPAddress = n.Gateway.String(), ep.IP.String()
			out.NetworkSettings.IPPrefixLen, out.NetworkSettings.MacAddress = n.Subnet.Bits(), ep.MAC
			out.MinidockerNet.GatewayNetwork = ep.Network
		}
		if ep == model.GatewayEndpoint6(s, sb) {
			out.NetworkSettings.IPv6Gateway, out.NetworkSettings.GlobalIPv6Address = n.Gateway6.String(), ep.IP6.String()
			out.NetworkSettings.GlobalIPv6PrefixLen = n.Subnet6.Bits()
		}
	}
	return out, nil
}

// inspectCmd shows sandboxes, or networks when a name is only a network.
func inspectCmd(c *cli.Context) error {
	if err := needArgs(c, 1, "inspect [-f FORMAT] NAME [NAME...]"); err != nil {
		return err
	}
	tmpl, err := templateOf(c)
	if err != nil {
		return err
	}
	e := eng(c)
	return e.View(func(s *store.State) error {
		var out []any
		var missing []error
		for _, name := range c.Args().Slice() {
			if sb, err := model.FindSandbox(s, name); err == nil {
				v, err := inspectSandbox(e, s, sb)
				if err != nil {
					return err
				}
				out = append(out, v)
			} else if n, ok := inspectNetwork(e.Listed(s), name); ok {
				out = append(out, n)
			} else {
				missing = append(missing, fmt.Errorf("No such object: %s", name))
			}
		}
		if err := writeInspect(c, out, tmpl); err != nil {
			return err
		}
		return errors.Join(missing...)
	})
}

// writeInspect prints inspect's objects as a JSON array, or each through
// a template over its JSON, as docker inspect -f.
func writeInspect(c *cli.Context, out []any, tmpl *format.Template) error {
	if tmpl == nil {
		if out == nil {
			out = []any{}
		}
		return writeJSON(c.App.Writer, out)
	}
	var rows []any
	for _, v := range out {
		g, err := format.Generic(v)
		if err != nil {
			return err
		}
		rows = append(rows, g)
	}
	return tmpl.Write(c.App.Writer, rows, nil)
}

// templateOf parses --format: nil for the default output ("" or "table").
func templateOf(c *cli.Context) (*format.Template, error) {
	if f := c.String("format"); f != "" && f != "table" {
		return format.Parse(f)
	}
	return nil, nil
}
