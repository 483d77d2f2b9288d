// Package view renders what minidocker-net built, read back from the
// kernel and explained with its records: the rules it owns, its bridges
// and what sits at the far end of each port, and the topology as a graph.
package view

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/minidocker-net/minidocker-net/engine"
	"github.com/minidocker-net/minidocker-net/iptables"
	"github.com/minidocker-net/minidocker-net/store"
)

// owned reports whether a rule line belongs to minidocker-net: it sits in
// one of our chains or jumps into one.
func owned(chain, line string) bool {
	return strings.HasPrefix(chain, iptables.Prefix) || strings.Contains(line, "-j "+iptables.Prefix)
}

// Rules writes the rules minidocker-net owns, as iptables-save prints them,
// each followed by what it is for. Rules the records call for but the
// kernel lacks, and rules in our chains nobody asked for, are flagged.
func Rules(w io.Writer, s *store.State, rs *iptables.Ruleset, tables []string) {
	why := map[string]string{}
	var want []iptables.Rule
	for _, r := range engine.DesiredRules(s) {
		why[r.Key()] = r.Why
		want = append(want, r)
	}
	width := 0
	for _, table := range tables {
		if t := rs.Tables[table]; t != nil {
			for _, lines := range t.Rules {
				for _, l := range lines {
					width = max(width, len(l))
				}
			}
		}
	}
	width = min(width, 110)
	for _, table := range tables {
		t := rs.Tables[table]
		fmt.Fprintf(w, "*%s\n", table)
		if t == nil {
			fmt.Fprintln(w, "# (no such table: minidocker-net has no rules here)")
		} else {
			if p := t.Policies["FORWARD"]; table == "filter" && p != "" {
				fmt.Fprintf(w, ":FORWARD %s  %s# the FORWARD policy\n", p, strings.Repeat(" ", max(0, width-len(":FORWARD "+p))))
			}
			for _, c := range t.Chains {
				if strings.HasPrefix(c, iptables.Prefix) {
					fmt.Fprintf(w, ":%s - [0:0]\n", c)
				}
			}
			for _, c := range t.Chains {
				for _, l := range t.Rules[c] {
					if !owned(c, l) {
						continue
					}
					note, ok := why[table+" "+l]
					if !ok {
						note = "not in minidocker-net's records: added by hand, or left over ('minidocker-net doctor')"
					}
					fmt.Fprintf(w, "%-*s  # %s\n", width, l, note)
				}
			}
		}
		for _, r := range want {
			if r.Table == table && !rs.HasRule(r) {
				fmt.Fprintf(w, "# MISSING %s  # %s ('minidocker-net restore' puts it back)\n", r.Line(), r.Why)
			}
		}
		fmt.Fprintln(w, "COMMIT")
	}
}

// ParseTables checks a --table value ("" for all).
func ParseTables(t string) ([]string, error) {
	if t == "" {
		return iptables.Tables, nil
	}
	if !slices.Contains(iptables.Tables, t) {
		return nil, fmt.Errorf("unknown table %q: use raw, nat or filter", t)
	}
	return []string{t}, nil
}
