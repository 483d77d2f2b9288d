// Command minidocker-net rebuilds Docker's networking from kernel
// primitives. This package only parses flags and prints; the work is done
// by the engine and the packages below it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/demo"
	"github.com/minidocker-net/minidocker-net/engine"
	"github.com/minidocker-net/minidocker-net/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// exitError carries a process exit status through urfave/cli.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withCode makes a command exit with a given status; a nil err prints nothing.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// The main goroutine keeps the main thread to itself: nsnet switches
// namespace on a locked thread that exits afterwards, and were that the
// main thread, the runtime would park it in the sandbox's namespace, where
// /proc/PID/ns/net would show this whole process (and rm -f kill it).
func init() { runtime.LockOSThread() }

func main() {
	// Hidden commands run before anything else: they are this binary
	// re-executed to become a process inside a sandbox or a throwaway host.
	if len(os.Args) > 1 && os.Args[1] == engine.EnterCommand {
		err := engine.Enter(os.Args[2:])
		fmt.Fprintln(os.Stderr, "minidocker-net: "+err.Error())
		os.Exit(127)
	}
	if len(os.Args) > 1 && os.Args[1] == demo.InitCommand {
		os.Exit(demo.Init(os.Args[2:]))
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.Run(intersperse(app, args))
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	if err != nil && err.Error() != "" {
		fmt.Fprintln(stderr, "Error: "+strings.TrimSpace(err.Error()))
	}
	return code
}

// usageError reports a usage mistake in one line, without the help text.
func usageError(c *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%v (see 'minidocker-net %s --help')", err, commandPath(c))
}

func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = usageError
		setUsageErrors(c.Subcommands)
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	cmds := append(append(append(networkCommands(), sandboxCommands()...), viewCommands()...), append(traceCommands(), adminCommands()...)...)
	cmds = append(cmds, nodeCommands())
	setUsageErrors(cmds)
	return &cli.App{
		Name:                   "minidocker-net",
		Usage:                  "Docker's networking rebuilt from kernel primitives: bridges, namespaces, veths, routes and iptables",
		Version:                version,
		Writer:                 stdout,
		ErrWriter:              stderr,
		UseShortOptionHandling: true,
		Suggest:                true,
		HideHelpCommand:        true,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "state-dir", EnvVars: []string{store.EnvStateDir}, Usage: "keep state in `DIR` (DIR/lib and DIR/run) instead of " + store.DefaultLib + " and " + store.DefaultRun},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan as shell commands and change nothing"},
			&cli.BoolFlag{Name: "verbose", Usage: "print each step as a shell command as it runs"},
			&cli.StringFlag{Name: "firewall-backend", EnvVars: []string{EnvFirewallBackend}, Usage: "`iptables` (the default) or nftables; recorded with the first network, fixed while networks exist"},
		}, clusterFlags()...),
		Before:         checkFlags,
		ExitErrHandler: func(*cli.Context, error) {}, // run() prints errors
		OnUsageError:   usageError,
		Commands:       cmds,
	}
}

// EnvFirewallBackend chooses the firewall backend, as the flag does.
const EnvFirewallBackend = "MINIDOCKER_NET_FIREWALL_BACKEND"

// checkFlags runs before every command: a bad global flag stops it.
func checkFlags(c *cli.Context) error {
	if _, err := engine.ParseBackend(c.String("firewall-backend")); err != nil {
		return err
	}
	return joinCluster(c)
}

// eng builds the engine from the global flags.
func eng(c *cli.Context) *engine.Engine {
	var verbose io.Writer
	if c.Bool("verbose") {
		verbose = c.App.ErrWriter
	}
	// The cluster flags were checked before the command (joinCluster).
	cfg, _ := cluster.Parse(c.String("cluster-store"), c.String("cluster-advertise"))
	return engine.New(engine.Options{
		Paths:   store.PathsFor(c.String("state-dir")),
		DryRun:  c.Bool("dry-run"),
		Verbose: verbose,
		Warn:    c.App.ErrWriter,
		Out:     c.App.Writer,
		Cluster: cfg,
		// Checked before the command (checkFlags).
		FirewallBackend: c.String("firewall-backend"),
	})
}

// needArgs checks the number of positional arguments.
func needArgs(c *cli.Context, min int, usage string) error {
	if c.NArg() < min {
		return argCountError(c, fmt.Sprintf("at least %d argument(s)", min), usage)
	}
	return nil
}

// exactArgs checks for an exact number of positional arguments.
func exactArgs(c *cli.Context, n int, usage string) error {
	if c.NArg() != n {
		word := "arguments"
		if n == 1 {
			word = "argument"
		}
		return argCountError(c, fmt.Sprintf("exactly %d %s", n, word), usage)
	}
	return nil
}

// argCountError is Docker's message in one line: what is needed, and the
// usage.
func argCountError(c *cli.Context, need, usage string) error {
	name := commandPath(c)
	return fmt.Errorf("%q requires %s (usage: minidocker-net %s; see 'minidocker-net %s --help')", name, need, usage, name)
}

// commandPath names the command with its parents: "network connect".
func commandPath(c *cli.Context) string {
	var names []string
	for _, l := range c.Lineage() {
		if l.Command != nil && l.Command.Name != "" && l.Command.Name != c.App.Name {
			names = append([]string{l.Command.Name}, names...)
		}
	}
	return strings.Join(slices.Compact(names), " ")
}

// interspersed are the commands whose options may follow their positional
// arguments, as Docker's CLI takes them (network create NAME --subnet ...,
// rm NAME -f). run, exec and trace are not: what follows the sandbox is a
// program's command line, whose options are its own.
func interspersed(name string) bool {
	return name != "run" && name != "exec" && name != "trace" && !strings.HasPrefix(name, "__")
}

// intersperse moves a command's options before its positional arguments,
// which urfave/cli requires: with Docker's habit "rm web -f" the -f would
// be taken for a name. Everything after "--" stays where it is.
func intersperse(app *cli.App, args []string) []string {
	out := append([]string(nil), args[:1]...)
	i := 1
	skipFlags := func(flags []cli.Flag) {
		for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-" && args[i] != "--" {
			out = append(out, args[i])
			if takesValue(flags, args[i]) && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			i++
		}
	}
	skipFlags(app.Flags)
	cmds := app.Commands
	var cmd *cli.Command
	for i < len(args) {
		next := findCommand(cmds, args[i])
		if next == nil {
			break
		}
		cmd = next
		out = append(out, args[i])
		i++
		if len(cmd.Subcommands) == 0 {
			break
		}
		skipFlags(cmd.Flags)
		cmds = cmd.Subcommands
	}
	if cmd == nil || len(cmd.Subcommands) > 0 || !interspersed(cmd.Name) || cmd.SkipFlagParsing {
		return append(out, args[i:]...)
	}
	var flags, pos []string
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(append(out, "--"), pos...)
	}
	return out
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether an option given without "=VALUE" consumes
// the next argument: every option but a boolean one (a group of short
// options, -fq, ends with its last letter's).
func takesValue(flags []cli.Flag, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	if !strings.HasPrefix(arg, "--") && len(name) > 1 {
		name = name[len(name)-1:]
	}
	if name == "h" || name == "help" {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
