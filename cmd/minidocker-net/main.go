// Command minidocker-net rebuilds Docker's networking from kernel
// primitives. This package only parses flags and prints; the work is done
// by the engine and the packages below it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/engine"
	"github.com/minidocker-net/minidocker-net/hostns"
	"github.com/minidocker-net/minidocker-net/nsnet"
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

func main() {
	// Hidden commands run before anything else: they are this binary
	// re-executed to become a process inside a sandbox or a throwaway host.
	if len(os.Args) > 1 && os.Args[1] == nsnet.EnterCommand {
		err := nsnet.Enter(os.Args[2:])
		fmt.Fprintln(os.Stderr, "minidocker-net: "+err.Error())
		os.Exit(127)
	}
	if len(os.Args) > 1 && os.Args[1] == hostns.InitCommand {
		os.Exit(hostns.Init(os.Args[2:]))
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.Run(args)
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
	return fmt.Errorf("%v (see 'minidocker-net %s --help')", err, c.Command.FullName())
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
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state-dir", EnvVars: []string{store.EnvStateDir}, Usage: "keep state in `DIR` (DIR/lib and DIR/run) instead of " + store.DefaultLib + " and " + store.DefaultRun},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan as shell commands and change nothing"},
			&cli.BoolFlag{Name: "verbose", Usage: "print each step as a shell command as it runs"},
		},
		ExitErrHandler: func(*cli.Context, error) {}, // run() prints errors
		OnUsageError:   usageError,
		Commands:       cmds,
	}
}

// eng builds the engine from the global flags.
func eng(c *cli.Context) *engine.Engine {
	var verbose io.Writer
	if c.Bool("verbose") {
		verbose = c.App.ErrWriter
	}
	return engine.New(engine.Options{
		Paths:   store.PathsFor(c.String("state-dir")),
		DryRun:  c.Bool("dry-run"),
		Verbose: verbose,
		Out:     c.App.Writer,
	})
}

// needArgs checks the number of positional arguments.
func needArgs(c *cli.Context, min int, usage string) error {
	if c.NArg() < min {
		return fmt.Errorf("%q requires at least %d argument(s).\nUsage:  minidocker-net %s", c.Command.FullName(), min, usage)
	}
	return nil
}
