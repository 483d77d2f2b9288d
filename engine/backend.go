package engine

import (
	"fmt"
	"strings"

	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/store"
)

// hostBackend is the firewall backend the host's networks were made with
// (each local network records it; none recorded is iptables, as before
// there was a choice), and the networks that record it.
func hostBackend(s *store.State) string {
	backend, _ := recordedBackend(s)
	if backend == "" {
		return firewall.IPTables
	}
	return backend
}

func recordedBackend(s *store.State) (string, []string) {
	var names []string
	backend := ""
	for _, name := range s.NetworkNames() {
		n := s.Networks[name]
		if n.Scope == store.ScopeGlobal {
			continue // the cluster's; its local part is the gateway bridge's
		}
		names = append(names, name)
		backend = firewall.IPTables
		if n.Firewall != "" {
			backend = n.Firewall
		}
	}
	return backend, names
}

// ParseBackend checks a --firewall-backend value.
func ParseBackend(v string) (string, error) {
	switch v {
	case "", firewall.IPTables, firewall.NFTables:
		return v, nil
	}
	return "", fmt.Errorf("invalid firewall backend %q: use iptables or nftables", v)
}

// backend is the firewall backend a command uses: the one the networks
// were made with; the flag's only while there is none.
func (e *Engine) backend(s *store.State) string {
	if recorded, _ := recordedBackend(s); recorded != "" {
		return recorded
	}
	if e.opts.FirewallBackend != "" {
		return e.opts.FirewallBackend
	}
	return firewall.IPTables
}

// recordBackend writes the backend into each network this command
// creates: the host's choice lives with its networks, and goes with the
// last of them. Creating one with the other backend asked for is an
// error that names the networks; another command goes on with theirs,
// and says so.
func (t *tx) recordBackend() error {
	asked := t.e.opts.FirewallBackend
	var created []*store.Network
	for name, n := range t.new.Networks {
		if t.old.Networks[name] == nil && n.Scope != store.ScopeGlobal {
			created = append(created, n)
		}
	}
	if _, names := recordedBackend(t.old); asked != "" && asked != t.backend && len(names) > 0 {
		if len(created) > 0 {
			return fmt.Errorf("the firewall backend is %s, recorded with networks %s: remove them first ('minidocker-net reset' removes everything), then choose %s",
				t.backend, strings.Join(names, ", "), asked)
		}
		t.e.warn("--firewall-backend %s is not this host's: its networks (%s) use %s", asked, strings.Join(names, ", "), t.backend)
	}
	if t.backend == firewall.IPTables {
		return nil
	}
	for _, n := range created {
		n.Firewall = t.backend
	}
	return nil
}
