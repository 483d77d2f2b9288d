package main

import (
	"errors"
	"fmt"
	"github.com/minidocker-net/minidocker-net/firewall"
	"os"
	"os/exec"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/demo"
	"github.com/minidocker-net/minidocker-net/engine"
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
				&cli.BoolFlag{Name: "multi-host", Usage: "the overlay lesson instead: three throwaway hosts on one LAN and one etcd"},
			}},
		{Name: "reset", Usage: "remove everything minidocker-net created on this host, found by name even without records", Action: resetCmd},
		{Name: "restore", Usage: "rebuild in the kernel what the records describe (after a reboot, an iptables flush, a deleted bridge)", Action: restoreCmd},
		{Name: "doctor", Usage: "check the host, and compare the records with the kernel", Action: doctorCmd,
			Description: "Exit status 1 when something needs fixing. --fix rolls back an interrupted command, removes\n" +
				"interfaces and namespaces no record names, and rebuilds what the records describe.",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "fix", Usage: "repair what differs"}}},
	}
}

func demoCmd(c *cli.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	inThrowaway := os.Getenv("MINIDOCKER_NET_THROWAWAY") == "1"
	// The lessons' commands, in the throwaway host too, use the backend
	// asked for.
	if b := c.String("firewall-backend"); b != "" {
		if err := os.Setenv(EnvFirewallBackend, b); err != nil {
			return err
		}
	}
	if !c.Bool("on-host") && !inThrowaway {
		args := []string{self, "demo", "--on-host", fmt.Sprintf("--lines-per-step=%d", c.Int("lines-per-step"))}
		for _, f := range []string{"step", "keep", "multi-host"} {
			if c.Bool(f) {
				args = append(args, "--"+f)
			}
		}
		cmd := demo.Throwaway(self, args...)
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
	opts := demo.Options{Self: self, Step: c.Bool("step"), Keep: c.Bool("keep"),
		Out: c.App.Writer, In: os.Stdin, PerStep: c.Int("lines-per-step"), NFTables: c.String("firewall-backend") == firewall.NFTables}
	if c.Bool("multi-host") {
		return demo.RunMultiHost(opts)
	}
	err = demo.Run(opts)
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
	// --dry-run has printed the plan, --verbose each step as it ran.
	n, err := eng(c).Reset()
	if err != nil {
		return err
	}
	if !c.Bool("dry-run") {
		fmt.Fprintf(c.App.Writer, "removed everything minidocker-net created (%d steps)\n", n)
	}
	return nil
}

func restoreCmd(c *cli.Context) error {
	return eng(c).Restore()
}

func doctorCmd(c *cli.Context) error {
	e := eng(c)
	if c.Bool("fix") {
		if err := e.DoctorFix(); err != nil {
			return err
		}
		if c.Bool("dry-run") {
			return nil
		}
	}
	findings, err := e.Doctor()
	if err != nil {
		return err
	}
	bad := 0
	marks := map[string]string{engine.OK: "ok   ", engine.Info: "info ", engine.Drift: "DRIFT", engine.Fault: "ERROR"}
	for _, f := range findings {
		fmt.Fprintf(c.App.Writer, "%s  %s\n", marks[f.Level], f.What)
		if f.Fix != "" {
			fmt.Fprintf(c.App.Writer, "       fix: %s\n", f.Fix)
		}
		if f.Level == engine.Drift || f.Level == engine.Fault {
			bad++
		}
	}
	if bad > 0 {
		return withCode(1, fmt.Errorf("%d problems found", bad))
	}
	return nil
}
