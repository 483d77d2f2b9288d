package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The two firewall backends side by side on one host: each with a state
// directory, names and subnets of its own, interleaved so both meet the
// same machine noise.

// Backends is what the backends part measured.
type Backends struct {
	Latency []BackendOp `json:"latency"`
	// OneMore is publishing (and removing) one port with nftables on a
	// host with none, and on one with 10,000 on another sandbox: two
	// state directories, one command of each in turn.
	OneMore [2]float64 `json:"one_more_port_ms"`
}

// BackendOp is one operation's median with each backend.
type BackendOp struct {
	Op       string  `json:"op"`
	IPTables float64 `json:"iptables_ms"`
	NFTables float64 `json:"nftables_ms"`
}

type backendTool struct {
	name   string
	pre    string // names of its own
	subnet int    // 10.<subnet>.x.0/24 for its networks
}

func (b backendTool) run(args ...string) float64 {
	return timed(*mdn, append([]string{"--state-dir", "/run/mdn-" + b.name, "--firewall-backend", b.name}, args...)...)
}

// hostPorts are n single ports from base, for expose and unexpose.
func hostPorts(n, base int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(base + i)
	}
	return out
}

func backends(reps int) *Backends {
	big := 10000
	if *quick {
		big = 1000
	}
	// First, before the others share the host's nftables table.
	one := oneMore(big)
	tools := []backendTool{{"iptables", "i", 201}, {"nftables", "n", 202}}
	type op struct {
		name string
		run  func(t backendTool, i int) float64
		reps int
	}
	net := func(t backendTool, name string, sub int) []string {
		return []string{"network", "create", "--subnet", fmt.Sprintf("10.%d.%d.0/24", t.subnet, sub), t.pre + name}
	}
	for _, t := range tools {
		t.run(net(t, "warm", 0)...)
		t.run("run", "-d", "--net", t.pre+"warm", "--name", t.pre+"warm")
		t.run("run", "-d", "--net", t.pre+"warm", "--name", t.pre+"many")
		t.run("run", "-d", "--net", t.pre+"warm", "--name", t.pre+"one")
	}
	base := map[string]int{"iptables": 20000, "nftables": 40000}
	ops := []op{
		{"network create", func(t backendTool, i int) float64 { return t.run(net(t, fmt.Sprintf("n%d", i), i+1)...) }, reps},
		{"run -d", func(t backendTool, i int) float64 {
			return t.run("run", "-d", "--net", t.pre+"warm", "--name", t.pre+fmt.Sprintf("s%d", i))
		}, reps},
		{"network connect", func(t backendTool, i int) float64 {
			return t.run("network", "connect", t.pre+fmt.Sprintf("n%d", i), t.pre+fmt.Sprintf("s%d", i))
		}, reps},
		{"rm", func(t backendTool, i int) float64 { return t.run("rm", "-f", t.pre+fmt.Sprintf("s%d", i)) }, reps},
		{"network rm", func(t backendTool, i int) float64 { return t.run("network", "rm", t.pre+fmt.Sprintf("n%d", i)) }, reps},
		{"run -d publishing 10 ports", func(t backendTool, i int) float64 {
			return t.run(append([]string{"run", "-d", "--net", t.pre + "warm", "--name", t.pre + fmt.Sprintf("p%d", i)}, ports(10, base[t.name]+big+100, "-p")...)...)
		}, reps},
		{"rm with 10 published ports", func(t backendTool, i int) float64 { return t.run("rm", "-f", t.pre+fmt.Sprintf("p%d", i)) }, reps},
		{"expose one port, no other published", func(t backendTool, i int) float64 {
			return t.run("expose", t.pre+"one", strconv.Itoa(base[t.name]+big+50))
		}, reps},
		{"unexpose it", func(t backendTool, i int) float64 {
			return t.run("unexpose", t.pre+"one", strconv.Itoa(base[t.name]+big+50))
		}, reps},
		{fmt.Sprintf("expose %d ports (one command)", big), func(t backendTool, i int) float64 {
			return t.run(append([]string{"expose", t.pre + "many"}, hostPorts(big, base[t.name])...)...)
		}, 3},
		{fmt.Sprintf("expose one more port beside %d", big), func(t backendTool, i int) float64 {
			return t.run("expose", t.pre+"one", strconv.Itoa(base[t.name]+big+50))
		}, 3},
		{fmt.Sprintf("unexpose it, beside %d", big), func(t backendTool, i int) float64 {
			return t.run("unexpose", t.pre+"one", strconv.Itoa(base[t.name]+big+50))
		}, 3},
		{fmt.Sprintf("unexpose %d ports (one command)", big), func(t backendTool, i int) float64 {
			return t.run(append([]string{"unexpose", t.pre + "many"}, hostPorts(big, base[t.name])...)...)
		}, 3},
	}
	runs := map[string][2][]float64{}
	for i := 0; i < reps; i++ {
		for k := range tools {
			t := tools[(k+i)%len(tools)] // who goes first alternates
			// The other backend's batches moved nftables' generation, which
			// the iptables backend's cached ruleset is checked against: one
			// change, not measured, reads it again, as on a host with only
			// one of them.
			t.run("expose", t.pre+"one", strconv.Itoa(base[t.name]+big+60))
			t.run("unexpose", t.pre+"one", strconv.Itoa(base[t.name]+big+60))
			for _, o := range ops {
				if i >= o.reps {
					continue
				}
				r := runs[o.name]
				col := 0
				if t.name == "nftables" {
					col = 1
				}
				r[col] = append(r[col], o.run(t, i))
				runs[o.name] = r
			}
			// The kernel frees what a block deleted (30,000 iptables rules)
			// after the commands return: let it, before the other backend's
			// block is measured.
			time.Sleep(3 * time.Second)
		}
	}
	res := &Backends{OneMore: one}
	for _, o := range ops {
		res.Latency = append(res.Latency, BackendOp{Op: o.name, IPTables: median(runs[o.name][0]), NFTables: median(runs[o.name][1])})
	}
	for _, t := range tools {
		t.run("rm", "-f", t.pre+"warm", t.pre+"many", t.pre+"one")
		t.run("network", "rm", t.pre+"warm")
	}
	return res
}

// oneMore measures one more port on an empty host and beside n, with
// nftables, the two states' commands taking turns (so both meet the same
// noise); the medians of 82 each. Both states share the namespace's one
// table, which a host never does: their removal at the end finds what the
// other already removed.
func oneMore(n int) [2]float64 {
	run := func(dir string, args ...string) float64 {
		return timed(*mdn, append([]string{"--state-dir", "/run/mdn-" + dir, "--firewall-backend", "nftables"}, args...)...)
	}
	run("one-empty", "network", "create", "--subnet", "10.205.0.0/24", "oe")
	run("one-empty", "run", "-d", "--net", "oe", "--name", "oe1")
	run("one-full", "network", "create", "--subnet", "10.206.0.0/24", "of")
	run("one-full", "run", "-d", "--net", "of", "--name", "ofmany")
	run("one-full", "run", "-d", "--net", "of", "--name", "of1")
	run("one-full", append([]string{"expose", "ofmany"}, hostPorts(n, 50000-n)...)...)
	var e, f []float64
	for i := 0; i < 41; i++ {
		e = append(e, run("one-empty", "expose", "oe1", "39000"))
		f = append(f, run("one-full", "expose", "of1", "39001"))
		e = append(e, run("one-empty", "unexpose", "oe1", "39000"))
		f = append(f, run("one-full", "unexpose", "of1", "39001"))
	}
	run("one-empty", "rm", "-f", "oe1")
	run("one-empty", "network", "rm", "oe")
	run("one-full", "rm", "-f", "ofmany", "of1")
	run("one-full", "network", "rm", "of")
	return [2]float64{median(e), median(f)}
}

func (b *Backends) report(r *strings.Builder) {
	r.WriteString("\nThe two firewall backends side by side (medians of interleaved runs; 3 runs for the big ones):\n\n")
	r.WriteString("| operation | iptables | nftables | iptables ÷ nftables |\n| --- | ---: | ---: | ---: |\n")
	for _, l := range b.Latency {
		fmt.Fprintf(r, "| %s | %.1f ms | %.1f ms | %s |\n", l.Op, l.IPTables, l.NFTables, ratio(l.IPTables, l.NFTables))
	}
	fmt.Fprintf(r, "\nOne more port with nftables, an empty host's commands and a host's with 10,000 ports taking turns (medians of 82 expose and unexpose): %.1f ms on the empty one, %.1f ms beside the 10,000 (%.2f×).\n",
		b.OneMore[0], b.OneMore[1], b.OneMore[1]/b.OneMore[0])
}
