package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/engine"
	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/store"
)

func sandboxCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name: "run", Usage: "create a sandbox (a named network namespace) and run a command in it", ArgsUsage: "[-- CMD [ARG...]]",
			UseShortOptionHandling: true, Action: runCmd,
			Description: "Without -d the command (default: your shell) runs attached to the terminal and run returns its exit status.\n" +
				"With -d the sandbox is created, the command (if any) starts in the background with its output kept for 'logs', and run returns at once.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "name", Usage: "sandbox name (default: a generated one)"},
				&cli.StringFlag{Name: "net", Aliases: []string{"network"}, Usage: "network to join: a network name, host or none (default: the default network 'bridge')"},
				&cli.StringFlag{Name: "ip", Usage: "IPv4 address on the network (networks created with --subnet)"},
				&cli.StringSliceFlag{Name: "network-alias", Aliases: []string{"alias"}, Usage: "extra name on the network"},
				&cli.StringFlag{Name: "hostname", Usage: "hostname (default: the first 12 characters of the ID)"},
				&cli.StringSliceFlag{Name: "add-host", Usage: "add NAME:IP (or NAME:host-gateway) to /etc/hosts"},
				&cli.IntFlag{Name: "gw-priority", Usage: "default-route priority of the network"},
				&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"}, Usage: "publish [HOST_IP:][HOST_PORT:]PORT[/PROTO], ranges as A-B"},
				&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "create the sandbox and return; the command runs in the background"},
				&cli.BoolFlag{Name: "rm", Usage: "remove the sandbox when the command exits"},
				&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin attached (always the case without -d)"},
				&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "accepted for Docker compatibility: the command uses your terminal"},
			},
		},
		{Name: "exec", Usage: "run a command in a sandbox", ArgsUsage: "SANDBOX [--] CMD [ARG...]", UseShortOptionHandling: true, Action: execCmd,
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background, output to the sandbox's log"},
				&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "accepted for Docker compatibility"},
				&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "accepted for Docker compatibility"},
			}},
		{Name: "ps", Usage: "list sandboxes with their networks, addresses, ports and processes", Action: psCmd, Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only names"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "accepted for Docker compatibility: every sandbox is always listed"},
		}},
		{Name: "inspect", Usage: "show sandboxes (or networks) as Docker-shaped JSON", ArgsUsage: "NAME...", Action: inspectCmd},
		{Name: "logs", Usage: "print the output of a sandbox's detached processes", ArgsUsage: "SANDBOX", Action: logsCmd},
		{Name: "rm", Usage: "remove sandboxes: namespace, veths, addresses, rules and files", ArgsUsage: "SANDBOX...", Action: rmCmd, Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "end the sandbox's processes first"},
		}},
		{Name: "port", Usage: "list a sandbox's published ports", ArgsUsage: "SANDBOX [PORT[/PROTO]]", Action: portCmd},
		{Name: "expose", Usage: "publish ports of an existing sandbox (a bare PORT publishes the same port on the host)", ArgsUsage: "SANDBOX SPEC...", Action: exposeCmd},
		{Name: "unexpose", Usage: "stop publishing ports", ArgsUsage: "SANDBOX SPEC...", Action: unexposeCmd},
		{Name: rmOnExitCommand, Hidden: true, SkipFlagParsing: true, Action: rmOnExitCmd},
	}
}

// rmOnExitCommand runs a detached command and removes the sandbox after it
// ends: run -d --rm.
const rmOnExitCommand = "__rm-on-exit"

func userShell() string {
	if sh := os.Getenv("SHELL"); sh != "" {
		return sh
	}
	return "/bin/sh"
}

func runCmd(c *cli.Context) error {
	e := eng(c)
	cmd := c.Args().Slice()
	detach := c.Bool("detach")
	if len(cmd) == 0 && !detach {
		cmd = []string{userShell()}
	}
	if len(cmd) > 0 {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			return withCode(127, fmt.Errorf("%s: executable file not found in $PATH (nothing was created)", cmd[0]))
		}
	}
	sb, err := e.CreateSandbox(engine.RunRequest{
		Name: c.String("name"), Network: c.String("net"), IP: c.String("ip"), Aliases: c.StringSlice("network-alias"),
		Hostname: c.String("hostname"), AddHosts: c.StringSlice("add-host"), GwPriority: c.Int("gw-priority"),
		Ports: c.StringSlice("publish"), Cmd: cmd, Detach: detach, AutoRemove: c.Bool("rm"),
	})
	if err != nil {
		return withCode(125, err)
	}
	if c.Bool("dry-run") {
		return nil
	}
	if detach {
		id := sb.ID
		if len(cmd) > 0 {
			args := cmd
			if c.Bool("rm") {
				self, err := os.Executable()
				if err != nil {
					return withCode(125, err)
				}
				args = append([]string{self, "--state-dir", c.String("state-dir"), rmOnExitCommand, sb.Name, "--"}, cmd...)
				sb = &store.Sandbox{Name: sb.Name, Mode: store.ModeHost} // the remover itself runs on the host
			}
			p, err := e.Detach(sb, args)
			if err != nil {
				return withCode(125, err)
			}
			if sb.Mode == store.ModeHost && !c.Bool("rm") {
				if err := e.RecordPid(sb.Name, p.Process.Pid); err != nil {
					return withCode(125, err)
				}
			}
			_ = p.Process.Release()
		}
		fmt.Fprintln(c.App.Writer, id)
		return nil
	}
	code, err := attached(e, sb, cmd)
	if c.Bool("rm") {
		if rerr := e.RemoveSandbox(sb.Name, true); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return withCode(125, err)
	}
	return withCode(code, nil)
}

// attached runs cmd in the sandbox on this terminal and returns its status.
func attached(e *engine.Engine, sb *store.Sandbox, cmd []string) (int, error) {
	p, err := engine.Command(sb, cmd)
	if err != nil {
		return 0, err
	}
	p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Ctrl-C goes to the program in the sandbox; this process waits for it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := p.Start(); err != nil {
		return 0, err
	}
	if sb.Mode == store.ModeHost {
		_ = e.RecordPid(sb.Name, p.Process.Pid)
	}
	go func() {
		for s := range sigs {
			if s == syscall.SIGTERM {
				_ = p.Process.Signal(s)
			}
		}
	}()
	err = p.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

func rmOnExitCmd(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) < 3 || args[1] != "--" {
		return errors.New("usage: " + rmOnExitCommand + " SANDBOX -- CMD...")
	}
	e := eng(c)
	var sb *store.Sandbox
	if err := e.View(func(s *store.State) error {
		sb = s.Sandboxes[args[0]]
		if sb == nil {
			return &engine.NotFoundError{Kind: "sandbox", Name: args[0]}
		}
		return nil
	}); err != nil {
		return err
	}
	p, err := engine.Command(sb, args[2:])
	if err != nil {
		return err
	}
	p.Stdout, p.Stderr = os.Stdout, os.Stderr
	_ = p.Run()
	return e.RemoveSandbox(sb.Name, true)
}

func lookup(e *engine.Engine, name string) (*store.Sandbox, error) {
	var sb *store.Sandbox
	err := e.View(func(s *store.State) error {
		sb = s.Sandboxes[name]
		if sb == nil {
			return &engine.NotFoundError{Kind: "sandbox", Name: name}
		}
		return nil
	})
	return sb, err
}

func execCmd(c *cli.Context) error {
	if err := needArgs(c, 2, "exec SANDBOX [--] CMD [ARG...]"); err != nil {
		return err
	}
	args := c.Args().Slice()
	cmd := args[1:]
	if cmd[0] == "--" {
		cmd = cmd[1:]
	}
	e := eng(c)
	sb, err := lookup(e, args[0])
	if err != nil {
		return err
	}
	if c.Bool("detach") {
		p, err := e.Detach(sb, cmd)
		if err != nil {
			return err
		}
		return p.Process.Release()
	}
	code, err := attached(e, sb, cmd)
	if err != nil {
		return withCode(126, err)
	}
	return withCode(code, nil)
}

func portsText(sb *store.Sandbox) string {
	var out []string
	for _, p := range sb.Ports {
		out = append(out, fmt.Sprintf("%s:%s->%s/%s", hostIP(p), rangeText(p.HostPort, p.HostPortEnd), rangeText(p.Port, p.PortEnd), p.Proto))
	}
	return strings.Join(out, ", ")
}

func hostIP(p store.Port) string {
	if p.HostIP.IsValid() {
		return p.HostIP.String()
	}
	return "0.0.0.0"
}

func rangeText(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

func psCmd(c *cli.Context) error {
	return eng(c).View(func(s *store.State) error {
		w := c.App.Writer
		if c.Bool("quiet") {
			for _, n := range s.SandboxNames() {
				fmt.Fprintln(w, n)
			}
			return nil
		}
		tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tNETWORKS\tIP ADDRESSES\tPORTS\tPROCESSES")
		for _, name := range s.SandboxNames() {
			sb := s.Sandboxes[name]
			gw := engine.GatewayEndpoint(s, sb)
			var nets, ips []string
			for _, ep := range sb.Endpoints {
				n := ep.Network
				if gw == ep {
					n += " (gw)"
				}
				nets = append(nets, n)
				ips = append(ips, ep.IP.String())
			}
			if sb.Mode != store.ModeBridge {
				nets = []string{sb.Mode}
			}
			ps, err := engine.Processes(sb)
			if err != nil {
				return err
			}
			procs := "none"
			if len(ps) > 0 {
				procs = fmt.Sprintf("%d: %s", len(ps), ps[0].Command)
				if len(procs) > 40 {
					procs = procs[:37] + "..."
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", sb.Name, strings.Join(nets, ", "), strings.Join(ips, ", "), portsText(sb), procs)
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
		Hostname string   `json:"Hostname"`
		Cmd      []string `json:"Cmd"`
	} `json:"Config"`
	NetworkSettings struct {
		SandboxID   string                   `json:"SandboxID"`
		SandboxKey  string                   `json:"SandboxKey"`
		Ports       map[string][]portBinding `json:"Ports"`
		Gateway     string                   `json:"Gateway"`
		IPAddress   string                   `json:"IPAddress"`
		IPPrefixLen int                      `json:"IPPrefixLen"`
		MacAddress  string                   `json:"MacAddress"`
		Networks    map[string]epSettings    `json:"Networks"`
	} `json:"NetworkSettings"`
	// Not in Docker's output: what carries the default route, and the
	// host end of each interface.
	MinidockerNet struct {
		GatewayNetwork string            `json:"GatewayNetwork"`
		HostVeths      map[string]string `json:"HostVeths"`
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
		dir := etcfiles.Dir(sb.Name)
		out.ResolvConfPath, out.HostnamePath, out.HostsPath = filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "hostname"), filepath.Join(dir, "hosts")
		out.NetworkSettings.SandboxKey = nsnet.Path(sb.Name)
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
	out.Config.Hostname, out.Config.Cmd = sb.Hostname, sb.Cmd
	out.HostConfig.PortBindings, out.NetworkSettings.Ports = map[string][]portBinding{}, map[string][]portBinding{}
	for _, p := range sb.Ports {
		for i := 0; i <= p.PortEnd-p.Port; i++ {
			key := fmt.Sprintf("%d/%s", p.Port+i, p.Proto)
			hp := strconv.Itoa(p.HostPort + i)
			b := portBinding{HostIP: hostIP(p), HostPort: hp}
			out.NetworkSettings.Ports[key] = append(out.NetworkSettings.Ports[key], b)
			if !p.HostIP.IsValid() {
				b.HostIP = ""
			}
			out.HostConfig.PortBindings[key] = append(out.HostConfig.PortBindings[key], b)
		}
	}
	out.NetworkSettings.SandboxID = sb.ID
	out.NetworkSettings.Networks = map[string]epSettings{}
	out.MinidockerNet.HostVeths = map[string]string{}
	gw := engine.GatewayEndpoint(s, sb)
	for _, ep := range sb.Endpoints {
		n := s.Networks[ep.Network]
		es := epSettings{Aliases: ep.Aliases, MacAddress: ep.MAC, GwPriority: ep.GwPriority, NetworkID: ep.NetworkID,
			EndpointID: ep.ID, Gateway: n.Gateway.String(), IPAddress: ep.IP.String(), IPPrefixLen: n.Subnet.Bits(),
			DNSNames: append([]string{sb.Name}, ep.Aliases...)}
		if ep.StaticIP {
			es.IPAMConfig = map[string]string{"IPv4Address": ep.IP.String()}
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
	}
	return out, nil
}

// inspectCmd shows sandboxes, or networks when a name is only a network.
func inspectCmd(c *cli.Context) error {
	if err := needArgs(c, 1, "inspect NAME [NAME...]"); err != nil {
		return err
	}
	e := eng(c)
	return e.View(func(s *store.State) error {
		var out []any
		var missing []error
		for _, name := range c.Args().Slice() {
			if sb := s.Sandboxes[name]; sb != nil {
				v, err := inspectSandbox(e, s, sb)
				if err != nil {
					return err
				}
				out = append(out, v)
			} else if n, ok := inspectNetwork(s, name); ok {
				out = append(out, n)
			} else {
				missing = append(missing, fmt.Errorf("No such object: %s", name))
			}
		}
		if out == nil {
			out = []any{}
		}
		if err := writeJSON(c.App.Writer, out); err != nil {
			return err
		}
		return errors.Join(missing...)
	})
}

func logsCmd(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("\"logs\" requires exactly 1 argument.\nUsage:  minidocker-net logs SANDBOX")
	}
	e := eng(c)
	if _, err := lookup(e, c.Args().First()); err != nil {
		return err
	}
	f, err := os.Open(e.Paths().LogFile(c.Args().First()))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(c.App.Writer, f)
	return err
}

func rmCmd(c *cli.Context) error {
	if err := needArgs(c, 1, "rm [-f] SANDBOX [SANDBOX...]"); err != nil {
		return err
	}
	e := eng(c)
	return eachName(c, func(name string) error { return e.RemoveSandbox(name, c.Bool("force")) })
}

func portCmd(c *cli.Context) error {
	if err := needArgs(c, 1, "port SANDBOX [PORT[/PROTO]]"); err != nil {
		return err
	}
	sb, err := lookup(eng(c), c.Args().First())
	if err != nil {
		return err
	}
	filter := c.Args().Get(1)
	if filter != "" && !strings.Contains(filter, "/") {
		filter += "/tcp"
	}
	found := false
	for _, p := range sb.Ports {
		for i := 0; i <= p.PortEnd-p.Port; i++ {
			key := fmt.Sprintf("%d/%s", p.Port+i, p.Proto)
			if filter != "" && key != filter {
				continue
			}
			found = true
			fmt.Fprintf(c.App.Writer, "%s -> %s:%d\n", key, hostIP(p), p.HostPort+i)
		}
	}
	if filter != "" && !found {
		return fmt.Errorf("no public port '%s' published for %s", filter, sb.Name)
	}
	return nil
}

func exposeCmd(c *cli.Context) error {
	if err := needArgs(c, 2, "expose SANDBOX SPEC [SPEC...]"); err != nil {
		return err
	}
	added, err := eng(c).Expose(c.Args().First(), c.Args().Tail())
	if err != nil || c.Bool("dry-run") {
		return err
	}
	for _, p := range added {
		fmt.Fprintf(c.App.Writer, "%s/%s -> %s:%s\n", rangeText(p.Port, p.PortEnd), p.Proto, hostIP(p), rangeText(p.HostPort, p.HostPortEnd))
	}
	return nil
}

func unexposeCmd(c *cli.Context) error {
	if err := needArgs(c, 2, "unexpose SANDBOX SPEC [SPEC...]"); err != nil {
		return err
	}
	return eng(c).Unexpose(c.Args().First(), c.Args().Tail())
}
