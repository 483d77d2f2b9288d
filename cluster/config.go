// Package cluster is the multi-host side: the cluster store (etcd v3) that
// holds overlay networks, their VNIs and subnets, the hosts that joined and
// every host's endpoints, through etcd's own primitives (transactions that
// create only what is absent, leases kept alive, watches). Local networks
// never reach it.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/minidocker-net/minidocker-net/store"
)

// Environment variables that give the cluster flags, as Docker's daemon
// took --cluster-store and --cluster-advertise.
const (
	EnvStore     = "MINIDOCKER_NET_CLUSTER_STORE"
	EnvAdvertise = "MINIDOCKER_NET_CLUSTER_ADVERTISE"
)

// Config is how this host reaches the cluster store and is reached by the
// other hosts (its VTEP address).
type Config struct {
	Store     string     `json:"store"` // etcd://HOST:PORT[,HOST:PORT...]
	Advertise netip.Addr `json:"advertise"`
	Host      string     `json:"host,omitempty"` // this host's ID in the cluster, made when it joins
}

// Endpoints are the store's client URLs.
func (c Config) Endpoints() []string {
	var out []string
	for _, hp := range strings.Split(strings.TrimPrefix(c.Store, "etcd://"), ",") {
		out = append(out, "http://"+hp)
	}
	return out
}

// Parse checks the two flags as Docker's daemon did: a store URL of the
// etcd scheme, and an advertise address that comes with it.
func Parse(storeURL, advertise string) (Config, error) {
	var c Config
	if storeURL == "" {
		if advertise != "" {
			return c, errors.New("invalid cluster configuration. --cluster-advertise must be accompanied by --cluster-store configuration")
		}
		return c, nil
	}
	rest, ok := strings.CutPrefix(storeURL, "etcd://")
	if !ok {
		return c, fmt.Errorf("invalid --cluster-store %q: only etcd://HOST:PORT[,HOST:PORT...] is supported", storeURL)
	}
	for _, hp := range strings.Split(rest, ",") {
		if _, err := netip.ParseAddrPort(hp); err != nil {
			host, port, found := strings.Cut(hp, ":")
			if !found || host == "" || port == "" || strings.ContainsAny(hp, "/ ") {
				return c, fmt.Errorf("invalid --cluster-store %q: %q is not HOST:PORT", storeURL, hp)
			}
		}
	}
	if advertise == "" {
		return c, errors.New("invalid cluster configuration. --cluster-store needs --cluster-advertise IP: the address the other hosts reach this one at")
	}
	a, err := netip.ParseAddr(advertise)
	if err != nil || !a.Is4() || a.IsLoopback() || a.IsUnspecified() {
		return c, fmt.Errorf("invalid --cluster-advertise %q: an IPv4 address of this host that the other hosts reach", advertise)
	}
	c.Store, c.Advertise = storeURL, a
	return c, nil
}

// File is where a host remembers its cluster configuration after first use.
func File(p store.Paths) string { return p.ClusterFile() }

// Load returns the remembered configuration; false when the host is in no
// cluster.
func Load(p store.Paths) (Config, bool, error) {
	var c Config
	b, err := os.ReadFile(File(p))
	if errors.Is(err, os.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, false, fmt.Errorf("%s: %w", File(p), err)
	}
	return c, c.Store != "", nil
}

// Save remembers a configuration (atomically).
func Save(p store.Paths, c Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.Lib, 0o755); err != nil {
		return err
	}
	tmp := File(p) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, File(p))
}

// Forget drops the remembered configuration: the host left.
func Forget(p store.Paths) error {
	if err := os.Remove(File(p)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
