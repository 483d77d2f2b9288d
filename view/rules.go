// Package view renders what minidocker-net built, read back from the
// kernel and explained with its records: the rules it owns, its bridges
// and what sits at the far end of each port, and the topology as a graph.
package view

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/store"
)

// Rules writes what the firewall backend owns, each rule annotated with
// what it is for; rules the records call for but the kernel lacks, and
// rules in our chains nobody asked for, are flagged.
func Rules(w io.Writer, s *store.State, fw, fw6 firewall.Backend, tables []string) error {
	if err := fw.List(w, model.Intent(s), tables); err != nil || !model.HasIPv6(s) {
		return err
	}
	fmt.Fprintf(w, "\n# IPv6 (%s), for the networks created with --ipv6\n", fw6.Name())
	return fw6.List(w, model.Intent6(s), tables)
}

// ParseTables checks a --table value ("" for all) against the backend's.
func ParseTables(t string, fw firewall.Backend) ([]string, error) {
	all := fw.Tables()
	if t == "" {
		return all, nil
	}
	if !slices.Contains(all, t) {
		return nil, fmt.Errorf("unknown table %q: use %s", t, strings.Join(all, ", "))
	}
	return []string{t}, nil
}
