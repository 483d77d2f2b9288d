package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/minidocker-net/minidocker-net/cluster"
)

// clusterFlags are the daemon flags Docker 1.9-1.12 took for overlay
// networks.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cluster-store", EnvVars: []string{cluster.EnvStore}, Usage: "join the cluster whose store is etcd at `etcd://HOST:PORT[,HOST:PORT...]` (remembered by this host)"},
		&cli.StringFlag{Name: "cluster-advertise", EnvVars: []string{cluster.EnvAdvertise}, Usage: "the `IP` the other hosts reach this one at (its VXLAN tunnel endpoint)"},
	}
}

// joinCluster runs before every command: given the cluster flags, the
// host joins (or is already in) that cluster.
func joinCluster(c *cli.Context) error {
	cfg, err := cluster.Parse(c.String("cluster-store"), c.String("cluster-advertise"))
	if err != nil || cfg.Store == "" {
		return err
	}
	return eng(c).Join(cfg)
}

func nodeCommands() *cli.Command {
	return &cli.Command{Name: "node", Usage: "the hosts of the cluster (overlay networks)", Subcommands: []*cli.Command{
		{Name: "ls", Usage: "list the hosts present in the cluster (their lease alive)", Action: nodeLs},
		{Name: "leave", Usage: "take this host out of its cluster (its keys in the store go with it)", Action: func(c *cli.Context) error { return eng(c).Leave() }},
	}}
}

func nodeLs(c *cli.Context) error {
	nodes, err := eng(c).Nodes()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.App.Writer, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOSTNAME\tADDRESS\tSTATUS\tENDPOINTS")
	for _, n := range nodes {
		id := n.ID
		if n.Self {
			id += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", id, n.Name, n.Advertise, "Ready", n.Endpoints)
	}
	return tw.Flush()
}
