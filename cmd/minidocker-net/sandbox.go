package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/engine"
	"github.com/minidocker-net/minidocker-net/model"
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
				&cli.StringFlag{Name: "net", Aliases: []string{"network"}, Usage: "network to join: a network name or ID, host or none (default: the default network 'bridge')"},
				&cli.StringFlag{Name: "ip", Usage: "IPv4 address on the network (networks created with --subnet)"},
				&cli.StringFlag{Name: "ip6", Usage: "IPv6 address on the network (networks created with --ipv6 and an IPv6 --subnet)"},
				&cli.StringFlag{Name: "mac-address", Usage: "MAC address of the sandbox's interface"},
				&cli.StringSliceFlag{Name: "network-alias", Aliases: []string{"alias"}, Usage: "extra name on the network"},
				&cli.StringFlag{Name: "hostname", Usage: "hostname (default: the first 12 characters of the ID)"},
				&cli.StringSliceFlag{Name: "add-host", Usage: "add NAME:IP (or NAME:host-gateway) to /etc/hosts"},
				&cli.IntFlag{Name: "gw-priority", Usage: "default-route priority of the network"},
				&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"}, Usage: "publish [HOST_IP:][HOST_PORT:]PORT[/PROTO], ranges as A-B"},
				&cli.StringSliceFlag{Name: "expose", Usage: "expose PORT[-END][/PROTO] (published by -P)"},
				&cli.BoolFlag{Name: "publish-all", Aliases: []string{"P"}, Usage: "publish every exposed port on an ephemeral host port"},
				&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set KEY=VALUE (or KEY, from this environment) for the command"},
				&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "label KEY=VALUE"},
				&cli.StringSliceFlag{Name: "dns", Usage: "a nameserver of the sandbox's own (the embedded DNS forwards to it)"},
				&cli.StringSliceFlag{Name: "dns-search", Usage: "a search domain of the sandbox's own"},
				&cli.StringSliceFlag{Name: "dns-option", Aliases: []string{"dns-opt"}, Usage: "a resolver option of the sandbox's own (ndots:2, ...)"},
				&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "create the sandbox and return; the command runs in the background"},
				&cli.BoolFlag{Name: "rm", Usage: "remove the sandbox when the command exits"},
				&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin attached (always the case without -d)"},
				&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "the command uses your terminal (it always does; with -i stdin must be one)"},
			},
		},
		{Name: "exec", Usage: "run a command in a sandbox", ArgsUsage: "SANDBOX [--] CMD [ARG...]", UseShortOptionHandling: true, Action: execCmd,
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background, output to the sandbox's log"},
				&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "accepted for Docker compatibility"},
				&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "accepted for Docker compatibility"},
				&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set KEY=VALUE for the command"},
			}},
		{Name: "ps", Usage: "list sandboxes with their networks, addresses, ports and processes", Action: psCmd, Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only names"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "accepted for Docker compatibility: every sandbox is always listed"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "full IDs"},
			&cli.StringFlag{Name: "format", Usage: "a Go template (fields: " + strings.Join(psFields, ", ") + "), 'table TEMPLATE' or json"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "name=, id=, label=, network=, status=created|running|exited"},
		}},
		{Name: "inspect", Usage: "show sandboxes (or networks) as Docker-shaped JSON", ArgsUsage: "NAME|ID...", Action: inspectCmd, Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "a Go template over the JSON, e.g. '{{.NetworkSettings.IPAddress}}'"},
		}},
		{Name: "logs", Usage: "print the output of a sandbox's detached processes", ArgsUsage: "SANDBOX", Action: logsCmd, Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new output until the sandbox's processes end"},
		}},
		{Name: "rm", Usage: "remove sandboxes: namespace, veths, addresses, rules and files", ArgsUsage: "SANDBOX...", Action: rmCmd, Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "end the sandbox's processes (as the command's last step)"},
		}},
		{Name: "port", Usage: "list a sandbox's published ports", ArgsUsage: "SANDBOX [PORT[/PROTO]]", Action: portCmd},
		{Name: "expose", Usage: "publish ports of an existing sandbox (a bare PORT publishes the same port on the host); with one sandbox running, SANDBOX may be left out",
			ArgsUsage: "[SANDBOX] SPEC...", Action: exposeCmd},
		{Name: "unexpose", Usage: "stop publishing ports", ArgsUsage: "SANDBOX SPEC...", Action: unexposeCmd},
		{Name: rmOnExitCommand, Hidden: true, SkipFlagParsing: true, Action: rmOnExitCmd},
	}
}

// rmOnExitCommand runs a sandbox's command and removes the sandbox when it
// ends (run --rm), whatever happens to the client that started it.
const rmOnExitCommand = "__rm-on-exit"

func userShell() string {
	if sh := os.Getenv("SHELL"); sh != "" {
		return sh
	}
	return "/bin/sh"
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// supervisor is the command line of the process that runs a --rm
// sandbox's command and removes the sandbox after it; the sandbox's ID,
// "--" and the command follow.
func supervisor(c *cli.Context) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return []string{self, "--state-dir", c.String("state-dir"), rmOnExitCommand}, nil
}

func runCmd(c *cli.Context) error {
	e := eng(c)
	cmd := c.Args().Slice()
	detach := c.Bool("detach")
	if c.Bool("tty") && c.Bool("interactive") && !detach && !isTerminal(os.Stdin) {
		return withCode(1, errors.New("the input device is not a TTY"))
	}
	if len(cmd) == 0 && !detach {
		cmd = []string{userShell()}
	}
	if len(cmd) > 0 {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			return withCode(127, fmt.Errorf("%s: executable file not found in $PATH (nothing was created)", cmd[0]))
		}
	}
	sup, err := supervisor(c)
	if err != nil {
		return withCode(125, err)
	}
	var attached *exec.Cmd
	if c.Bool("rm") && !detach && !c.Bool("dry-run") {
		attached = &exec.Cmd{} // its command line is the engine's to complete
	}
	sb, err := e.CreateSandbox(engine.RunRequest{
		Name: c.String("name"), Network: c.String("net"), IP: c.String("ip"), IP6: c.String("ip6"), MAC: c.String("mac-address"), Aliases: c.StringSlice("network-alias"),
		Hostname: c.String("hostname"), AddHosts: c.StringSlice("add-host"), GwPriority: c.Int("gw-priority"),
		Ports: c.StringSlice("publish"), Expose: c.StringSlice("expose"), PublishAll: c.Bool("publish-all"),
		Env: c.StringSlice("env"), Labels: c.StringSlice("label"),
		DNS: c.StringSlice("dns"), DNSSearch: c.StringSlice("dns-search"), DNSOptions: c.StringSlice("dns-option"),
		Cmd: cmd, Detach: detach, AutoRemove: c.Bool("rm"), Supervisor: sup, Attached: attached,
	})
	if err != nil {
		return withCode(125, err)
	}
	if c.Bool("dry-run") {
		return nil
	}
	if detach {
		fmt.Fprintln(c.App.Writer, sb.ID)
		return nil
	}
	if attached != nil {
		// The supervisor, started with the sandbox, runs the command on
		// this terminal and removes the sandbox when it ends, even if this
		// process is killed or loses its terminal.
		code, err := engine.Wait(attached)
		if err != nil {
			return withCode(125, err)
		}
		return withCode(code, nil)
	}
	code, err := e.RunAttached(sb, cmd, true)
	if err != nil {
		return withCode(125, err)
	}
	return withCode(code, nil)
}

// rmOnExitCmd is the supervisor of a --rm sandbox (see engine.Supervise).
func rmOnExitCmd(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) < 3 || args[1] != "--" {
		return errors.New("usage: " + rmOnExitCommand + " SANDBOX_ID -- CMD...")
	}
	code, err := eng(c).Supervise(args[0], args[2:])
	if err != nil {
		return withCode(max(code, 1), err)
	}
	return withCode(code, nil)
}

// lookup finds a sandbox by name, ID or unique ID prefix.
func lookup(e *engine.Engine, ref string) (*store.Sandbox, error) {
	var sb *store.Sandbox
	err := e.View(func(s *store.State) error {
		var err error
		sb, err = model.FindSandbox(s, ref)
		return err
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
	if len(cmd) == 0 {
		return argCountError(c, "a command", "exec SANDBOX [--] CMD [ARG...]")
	}
	e := eng(c)
	sb, err := lookup(e, args[0])
	if err != nil {
		return err
	}
	sb.Env = append(sb.Env, c.StringSlice("env")...)
	if c.Bool("detach") {
		return e.Detach(sb, cmd)
	}
	// exec does not replace a host-mode sandbox's main process.
	code, err := e.RunAttached(sb, cmd, false)
	if err != nil {
		return withCode(126, err)
	}
	return withCode(code, nil)
}

func logsCmd(c *cli.Context) error {
	if err := exactArgs(c, 1, "logs [-f] SANDBOX"); err != nil {
		return err
	}
	e := eng(c)
	sb, err := lookup(e, c.Args().First())
	if err != nil {
		return err
	}
	return e.Logs(c.App.Writer, sb, c.Bool("follow"))
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
	e := eng(c)
	var bindings []model.Binding
	var name string
	err := e.View(func(s *store.State) error {
		sb, err := model.FindSandbox(s, c.Args().First())
		if err != nil {
			return err
		}
		name, bindings = sb.Name, model.Bindings(s, sb)
		return nil
	})
	if err != nil {
		return err
	}
	filter := c.Args().Get(1)
	if filter != "" && !strings.Contains(filter, "/") {
		filter += "/tcp"
	}
	found := false
	for _, b := range bindings {
		if filter == "" {
			fmt.Fprintf(c.App.Writer, "%s -> %s\n", b.Key, b.Host)
		} else if b.Key == filter {
			// As docker port with a port: the host side only.
			fmt.Fprintln(c.App.Writer, b.Host)
			found = true
		}
	}
	if filter != "" && !found {
		return fmt.Errorf("no public port '%s' published for %s", filter, name)
	}
	return nil
}

func exposeCmd(c *cli.Context) error {
	if err := needArgs(c, 1, "expose [SANDBOX] SPEC [SPEC...]"); err != nil {
		return err
	}
	e := eng(c)
	ref, specs := c.Args().First(), c.Args().Tail()
	if len(specs) == 0 {
		// "expose 45678": the only running sandbox, if there is one.
		var err error
		if ref, err = e.OnlyRunning(); err != nil {
			return err
		}
		specs = c.Args().Slice()
	}
	added, err := e.Expose(ref, specs)
	if err != nil || c.Bool("dry-run") {
		return err
	}
	for _, p := range added {
		host := "0.0.0.0"
		if p.HostIP.Is6() {
			host = "[" + p.HostIP.String() + "]"
		} else if p.HostIP.IsValid() {
			host = p.HostIP.String()
		}
		fmt.Fprintf(c.App.Writer, "%s/%s -> %s:%s\n", rangeText(p.Port, p.PortEnd), p.Proto, host, rangeText(p.HostPort, p.HostPortEnd))
	}
	return nil
}

func unexposeCmd(c *cli.Context) error {
	if err := needArgs(c, 2, "unexpose SANDBOX SPEC [SPEC...]"); err != nil {
		return err
	}
	return eng(c).Unexpose(c.Args().First(), c.Args().Tail())
}
