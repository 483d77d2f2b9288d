package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/demo"
	"github.com/minidocker-net/minidocker-net/hostns"
	"github.com/minidocker-net/minidocker-net/store"
)

func adminCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "demo", Usage: "the guided walk through the Docker networking lessons, with every primitive shown", Action: demoCmd,
			Description: "By default the demo builds everything in its own throwaway host (new network, mount and PID\n" +
				"namespaces), so the machine is never touched; --on-host builds on the real host instead.",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "step", Usage: "pause between lessons"},
				&cli.BoolFlag{Name: "keep", Usage: "leave the topology up for exploring (in the throwaway host: opens a shell there)"},
				&cli.BoolFlag{Name: "on-host", Usage: "build on the real host instead of a throwaway one"},
				&cli.IntFlag{Name: "lines-per-step", Value: 6, Usage: "lines shown per primitive step before eliding (0: all)"},
			}},
		{Name: "reset", Usage: "remove everything minidocker-net created on this host, found by name even without records", Action: resetCmd},
	}
}

func demoCmd(c *cli.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	inThrowaway := os.Getenv("MINIDOCKER_NET_THROWAWAY") == "1"
	if !c.Bool("on-host") && !inThrowaway {
		args := []string{self, "demo", "--on-host", fmt.Sprintf("--lines-per-step=%d", c.Int("lines-per-step"))}
		for _, f := range []string{"step", "keep"} {
			if c.Bool(f) {
				args = append(args, "--"+f)
			}
		}
		cmd := hostns.Command(self, args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		fmt.Fprintln(c.App.Writer, "Running the demo in a throwaway host (new network, mount and PID namespaces): nothing on this machine changes.")
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return withCode(ee.ExitCode(), nil)
		}
		return err
	}
	if d := c.String("state-dir"); d != "" {
		if err := os.Setenv(store.EnvStateDir, d); err != nil {
			return err
		}
	}
	err = demo.Run(demo.Options{Self: self, Step: c.Bool("step"), Keep: c.Bool("keep"),
		Out: c.App.Writer, In: os.Stdin, PerStep: c.Int("lines-per-step")})
	if c.Bool("keep") && inThrowaway {
		fmt.Fprintln(c.App.Writer, "\nA shell inside the throwaway host: look around, then 'exit' and it all disappears.")
		sh := exec.Command(userShell())
		sh.Stdin, sh.Stdout, sh.Stderr = os.Stdin, os.Stdout, os.Stderr
		sh.Env = append(os.Environ(), "PS1=(minidocker-net demo) \\w# ")
		_ = sh.Run()
	}
	return err
}

func resetCmd(c *cli.Context) error {
	done, err := eng(c).Reset()
	if c.Bool("dry-run") || c.Bool("verbose") {
		for _, d := range done {
			fmt.Fprintln(c.App.Writer, d)
		}
	}
	if err != nil {
		return err
	}
	if !c.Bool("dry-run") {
		fmt.Fprintf(c.App.Writer, "removed everything minidocker-net created (%d actions)\n", len(done))
	}
	return nil
}
