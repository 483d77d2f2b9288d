package cluster

import (
	"net/netip"

	"github.com/minidocker-net/minidocker-net/store"
)

// Store is what a command reads of the cluster store while it plans (the
// plan's own steps write it): the seam the engine's tests fake.
type Store interface {
	Networks() (map[string]*store.Network, error)
	Endpoints(netID string) ([]Endpoint, int64, error)
	Used() (vnis map[int]bool, subnets []netip.Prefix, err error)
	Hosts() (map[string]Host, error)
}

// Fake is a Store held in memory, for tests.
type Fake struct {
	Nets  map[string]*store.Network
	Eps   []Endpoint
	Nodes map[string]Host
	Err   error // every read fails with it
}

func (f *Fake) Networks() (map[string]*store.Network, error) {
	if f.Err != nil {
		return nil, f.Err
	}
	out := map[string]*store.Network{}
	for k, n := range f.Nets {
		c := *n
		out[k] = &c
	}
	return out, nil
}

func (f *Fake) Endpoints(netID string) ([]Endpoint, int64, error) {
	if f.Err != nil {
		return nil, 0, f.Err
	}
	var out []Endpoint
	for _, e := range f.Eps {
		if netID == "" || e.NetworkID == netID {
			out = append(out, e)
		}
	}
	SortEndpoints(out)
	return out, 1, nil
}

func (f *Fake) Used() (map[int]bool, []netip.Prefix, error) {
	if f.Err != nil {
		return nil, nil, f.Err
	}
	vnis := map[int]bool{}
	var subnets []netip.Prefix
	for _, n := range f.Nets {
		vnis[n.VNI] = true
		subnets = append(subnets, n.Subnet)
	}
	return vnis, subnets, nil
}

func (f *Fake) Hosts() (map[string]Host, error) {
	if f.Err != nil {
		return nil, f.Err
	}
	return f.Nodes, nil
}
