package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/trace"
	"github.com/minidocker-net/minidocker-net/view"
)

func viewCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "rules", Usage: "the iptables (and ip6tables) rules minidocker-net owns, annotated with what each one is for", Action: rulesCmd,
			Flags: []cli.Flag{&cli.StringFlag{Name: "table", Usage: "only raw, nat or filter"}}},
		{Name: "bridges", Usage: "bridges and their ports, with the sandbox at the other end of each veth", Action: bridgesCmd},
		{Name: "graph", Usage: "the topology: host, bridges, sandboxes, veths, published ports, the way out", Action: graphCmd,
			Flags: []cli.Flag{&cli.StringFlag{Name: "format", Value: "dot", Usage: "dot, mermaid or svg (svg needs Graphviz)"}}},
	}
}

func rulesCmd(c *cli.Context) error {
	e := eng(c)
	return e.View(func(s *store.State) error {
		fw := e.Firewall(s)
		tables, err := view.ParseTables(c.String("table"), fw)
		if err != nil {
			return err
		}
		return view.Rules(c.App.Writer, s, fw, e.Firewall6(s), tables)
	})
}

func bridgesCmd(c *cli.Context) error {
	return eng(c).View(func(s *store.State) error {
		bs, err := view.Bridges(s)
		if err != nil {
			return err
		}
		return view.WriteBridges(c.App.Writer, bs)
	})
}

func graphCmd(c *cli.Context) error {
	e := eng(c)
	return e.View(func(s *store.State) error {
		s = e.WithRemote(s) // the other hosts, on overlay networks
		up := view.FindUplink()
		switch c.String("format") {
		case "dot":
			view.Dot(c.App.Writer, s, up)
		case "mermaid":
			view.Mermaid(c.App.Writer, s, up)
		case "svg":
			return view.SVG(c.App.Writer, s, up)
		default:
			return fmt.Errorf("unknown --format %q: use dot, mermaid or svg", c.String("format"))
		}
		return nil
	})
}

func traceCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "trace", Usage: "explain hop by hop whether a packet would get there, and why", ArgsUsage: "FROM TO[:PORT[/PROTO]]",
			Description: "FROM and TO are sandbox names, 'host', or addresses (FROM: another machine sending to the host); an IPv6\n" +
				"address is written bare, or [ADDR]:PORT with a port. -6 traces an IPv6 packet between names.\n" +
				"Exit status: 0 when the packet would arrive, 1 when it would not. With --probe a real packet is sent from FROM\n" +
				"and the status is 0 when both agree it arrives, 1 when both agree it does not, 2 when they disagree.",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "probe", Usage: "also send one real packet and report what happened"},
				&cli.BoolFlag{Name: "6", Usage: "an IPv6 packet (the sandboxes' IPv6 addresses, routes and ip6tables rules)"}},
			Action: traceCmd},
		{Name: trace.ProbeCommand, Hidden: true, Action: probeCmd},
	}
}

func traceCmd(c *cli.Context) error {
	if err := exactArgs(c, 2, "trace [--probe] FROM TO[:PORT[/PROTO]]"); err != nil {
		return err
	}
	to, err := trace.ParseTarget(c.Args().Get(1))
	if err != nil {
		return err
	}
	to.IPv6 = to.IPv6 || c.Bool("6")
	e := eng(c)
	var rep *trace.Report
	var probeSb *store.Sandbox
	var probeState *store.State
	err = e.View(func(s *store.State) error {
		var err error
		rep, err = trace.Trace(e.WithRemote(s), e.Firewall(s), e.Firewall6(s), c.Args().Get(0), to)
		if err != nil {
			return err
		}
		probeSb, probeState = s.Sandboxes[rep.ProbeFrom], s
		return nil
	})
	if err != nil {
		return err
	}
	w := c.App.Writer
	for _, l := range rep.Lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w, "verdict: "+rep.Verdict)
	if !c.Bool("probe") {
		if rep.Arrives {
			return nil
		}
		return withCode(1, nil)
	}
	if rep.ProbeFrom == "" {
		return errors.New("--probe needs FROM to be a sandbox or the host: nothing can be sent from an outside address")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{self, trace.ProbeCommand, to.Proto, rep.ProbeAddr, strconv.Itoa(to.Port), strconv.FormatBool(rep.IPv6)}
	// The kernel's own account, where nf_tables is there to ask.
	kt, kerr := trace.TraceKernel(probeState, probeSb, rep, to)
	var p *exec.Cmd
	if probeSb != nil {
		if p, err = e.Command(probeSb, args); err != nil {
			return err
		}
	} else {
		p = exec.Command(args[0], args[1:]...)
	}
	out, err := p.Output()
	reached := err == nil
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		return fmt.Errorf("probe: %w", err)
	}
	fmt.Fprintf(w, "probe:   %s\n", strings.TrimSpace(string(out)))
	kernelDropped := false
	if kt != nil {
		lines, dropped, err := kt.Done()
		if err != nil {
			fmt.Fprintf(w, "kernel:  (the trace could not be read: %v)\n", err)
		}
		fmt.Fprintln(w, "kernel:  nf_tables' own trace of the probe's first packet, rule by rule (meta nftrace):")
		for _, l := range lines {
			fmt.Fprintln(w, "kernel:    "+l)
		}
		switch {
		case len(lines) == 0:
			fmt.Fprintln(w, "kernel:  no chain of nf_tables saw it")
		case dropped != "":
			kernelDropped = true
			fmt.Fprintln(w, "kernel:  dropped by "+dropped)
		default:
			fmt.Fprintln(w, "kernel:  no rule dropped it")
		}
	} else if kerr != nil {
		fmt.Fprintf(w, "kernel:  (no trace: %v)\n", kerr)
	}
	if kernelDropped && rep.Arrives && reached {
		// The probe arrived: what the kernel dropped was a copy.
		fmt.Fprintln(w, "kernel:  (the probe arrived: the drop was of a copy of it, which the kernel traces alike)")
	}
	switch {
	case reached == rep.Arrives && reached:
		return nil
	case reached == rep.Arrives:
		return withCode(1, nil)
	}
	fmt.Fprintln(w, "the probe DISAGREES with the explanation: please report it, with 'minidocker-net rules' and this output")
	return withCode(2, nil)
}

func probeCmd(c *cli.Context) error {
	port, _ := strconv.Atoi(c.Args().Get(2))
	v6, _ := strconv.ParseBool(c.Args().Get(3))
	ok, msg := trace.Probe(c.Args().Get(0), c.Args().Get(1), port, v6)
	if ok {
		fmt.Fprintln(c.App.Writer, "arrived: "+msg)
		return nil
	}
	fmt.Fprintln(c.App.Writer, "did not arrive: "+msg)
	return withCode(1, nil)
}
