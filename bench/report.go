package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

func ratio(docker, ours float64) string {
	if docker == 0 || ours == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f×", docker/ours)
}

func write(res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "results.json"), b, 0o644); err != nil {
		return err
	}
	var r strings.Builder
	fmt.Fprintf(&r, "Measured %s on %s CPUs (%s), kernel %s, %s; %s; Docker %s.\n\n",
		res.When, res.Machine["cpus"], res.Machine["cpu"], res.Machine["kernel"], res.Machine["iptables"], res.Machine["minidocker-net"], orNone(res.Machine["docker"]))
	r.WriteString("| operation (median, one interleaved run) | minidocker-net | Docker | Docker ÷ ours | before (-before) |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, l := range res.Latency {
		fmt.Fprintf(&r, "| %s | %.1f ms | %s | %s | %s |\n", l.Op, l.Ours, ms(l.Docker), ratio(l.Docker, l.Ours), ms(l.Before))
	}
	if len(res.DNS) > 0 {
		r.WriteString("\nThe embedded DNS at 127.0.0.11, with the scaling part's sandboxes (dnsperf for 10 s; p50/p99 of 10,000 queries one at a time, in rounds alternating between the two tools; resident memory of the resolver, of dockerd for Docker):\n\n")
		r.WriteString("| names | tool | queries/s | p50 | p99 | resident memory |\n| --- | --- | ---: | ---: | ---: | ---: |\n")
		for _, d := range res.DNS {
			fmt.Fprintf(&r, "| %s | %s | %.0f | %.3f ms | %.3f ms | %.1f MiB |\n", d.What, d.Tool, d.QPS, d.P50, d.P99, d.RSSMiB)
		}
	}
	if len(res.Transfer) > 0 {
		// A published path is compared with the first path from the same
		// place after the ceiling: the direct one.
		base := map[string]float64{}
		r.WriteString("\n| iperf3 TCP, 3 s, median of 3 | minidocker-net | ÷ direct from there | Docker | ÷ direct from there |\n| --- | ---: | ---: | ---: | ---: |\n")
		for _, t := range res.Transfer {
			from := strings.SplitN(t.Path, ":", 2)[0]
			if strings.Contains(t.Path, "ceiling") {
				fmt.Fprintf(&r, "| %s | %.1f Gbit/s | | %s | |\n", t.Path, t.Ours, gbps(t.Docker))
				continue
			}
			if _, ok := base[from]; !ok {
				base[from], base[from+" docker"] = t.Ours, t.Docker
			}
			fmt.Fprintf(&r, "| %s | %.1f Gbit/s | %s | %s | %s |\n", t.Path, t.Ours, share(t.Ours, base[from]), gbps(t.Docker), share(t.Docker, base[from+" docker"]))
		}
	}
	if o := res.Overlay; o != nil {
		r.WriteString("\nOverlay networks, two hosts on one LAN and one etcd (Docker not compared: its overlay needs swarm mode):\n\n")
		r.WriteString("| on host1 (median) | overlay | bridge | overlay ÷ bridge |\n| --- | ---: | ---: | ---: |\n")
		for _, p := range o.Latency {
			fmt.Fprintf(&r, "| %s | %.1f ms | %s | %s |\n", p.What, p.Ours, ms(p.Beside), ratio(p.Ours, p.Beside))
		}
		for _, p := range o.Throughput {
			fmt.Fprintf(&r, "\n%s: %.1f beside %.1f (%s).\n", p.What, p.Ours, p.Beside, share(p.Ours, p.Beside))
		}
		fmt.Fprintf(&r, "\n%s %.1f ms after its run -d started, which took %.1f ms while host1's polling kept a CPU busy (the address is claimed first; the other hosts learn it from their watch while the sandbox is built).\n", o.Known.What, o.Known.Ours, o.Known.Beside)
	}
	if res.Backends != nil {
		res.Backends.report(&r)
	}
	if len(res.Resources) > 0 {
		r.WriteString("\n| after publishing 1000 ports | minidocker-net | Docker |\n| --- | --- | --- |\n")
		for _, x := range res.Resources {
			fmt.Fprintf(&r, "| %s | %s | %s |\n", x.What, x.Ours, orNone(x.Docker))
		}
	}
	r.WriteString("\nScaling (time of one operation as the host grows):\n\n| curve | first | last | last ÷ first |\n| --- | ---: | ---: | ---: |\n")
	keys := make([]string, 0, len(res.Scaling))
	for k := range res.Scaling {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := res.Scaling[k]
		first, last := avg(p[:min(5, len(p))]), avg(p[max(0, len(p)-5):])
		fmt.Fprintf(&r, "| %s (n = %d … %d) | %.1f ms | %.1f ms | %.2f |\n", k, p[0].N, p[len(p)-1].N, first, last, last/first)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&r, "\nNote: %s\n", n)
	}
	if err := os.WriteFile(filepath.Join(*out, "report.md"), []byte(r.String()), 0o644); err != nil {
		return err
	}
	fmt.Print("\n" + r.String())
	return plot(res, keys)
}

func avg(p []Point) float64 {
	s := 0.0
	for _, x := range p {
		s += x.Ms
	}
	return s / float64(len(p))
}

func ms(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ms", v)
}

func gbps(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f Gbit/s", v)
}

func share(v, direct float64) string {
	if direct == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v/direct)
}

func orNone(s string) string {
	if s == "" {
		return "not measured"
	}
	return s
}

// plot draws the scaling curves with gnuplot, when it is installed.
func plot(res *Results, keys []string) error {
	gp, err := exec.LookPath("gnuplot")
	if err != nil {
		fmt.Println("(no gnuplot: scaling.png not drawn; apt-get install gnuplot-nox)")
		return nil
	}
	panels := []struct{ title, match, xlabel string }{
		{"run -d", "run -d", "sandboxes (containers) on the network"},
		{"network create", "network create", "networks"},
		{"publishing one more port", "expose", "published ports"},
	}
	var script strings.Builder
	fmt.Fprintf(&script, "set terminal pngcairo size 1500,460 font 'sans,10'\nset output '%s'\n", filepath.Join(*out, "scaling.png"))
	script.WriteString("set multiplot layout 1,3 title 'Time of one operation as the host grows (lower is better)'\nset grid\nset key top left\nset ylabel 'ms'\nset yrange [0:*]\n")
	for _, p := range panels {
		var plots []string
		for _, k := range keys {
			if !strings.Contains(k, p.match) {
				continue
			}
			file := filepath.Join(*out, strings.NewReplacer(" ", "_", ":", "", ",", "", "(", "", ")", "").Replace(k)+".dat")
			var data strings.Builder
			for _, pt := range res.Scaling[k] {
				fmt.Fprintf(&data, "%d %.3f\n", pt.N, pt.Ms)
			}
			if err := os.WriteFile(file, []byte(data.String()), 0o644); err != nil {
				return err
			}
			who := strings.SplitN(k, ":", 2)[0]
			color := map[string]string{"ours": "#009e73", "ours (nftables)": "#e69f00", "docker": "#9400d3"}[who]
			plots = append(plots, fmt.Sprintf("'%s' with lines lw 2 lc rgb '%s' title '%s'", file, color, who))
		}
		if len(plots) == 0 {
			continue
		}
		fmt.Fprintf(&script, "set title '%s'\nset xlabel '%s'\nplot %s\n", p.title, p.xlabel, strings.Join(plots, ", "))
	}
	script.WriteString("unset multiplot\n")
	cmd := exec.Command(gp)
	cmd.Stdin = strings.NewReader(script.String())
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %v: %s", err, o)
	}
	return nil
}
