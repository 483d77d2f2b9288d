package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/nat"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/view"
)

func viewCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "rules", Usage: "the iptables rules minidocker-net owns, annotated with what each one is for", Action: rulesCmd,
			Flags: []cli.Flag{&cli.StringFlag{Name: "table", Usage: "only raw, nat or filter"}}},
		{Name: "bridges", Usage: "bridges and their ports, with the sandbox at the other end of each veth", Action: bridgesCmd},
		{Name: "graph", Usage: "the topology: host, bridges, sandboxes, veths, published ports, the way out", Action: graphCmd,
			Flags: []cli.Flag{&cli.StringFlag{Name: "format", Value: "dot", Usage: "dot, mermaid or svg (svg needs Graphviz)"}}},
	}
}

func rulesCmd(c *cli.Context) error {
	tables, err := view.ParseTables(c.String("table"))
	if err != nil {
		return err
	}
	return eng(c).View(func(s *store.State) error {
		rs, err := nat.Save()
		if err != nil {
			return err
		}
		view.Rules(c.App.Writer, s, rs, tables)
		return nil
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
	return eng(c).View(func(s *store.State) error {
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
