package hostd

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/store"
)

// StoreLine starts a request to the cluster store, then one of the Op
// names and its argument in JSON.
const StoreLine = "store"

// The store's requests.
const (
	OpNetworks  = "networks"
	OpEndpoints = "endpoints"  // a network's ID, "" for all
	OpUsed      = "used"       // the VNIs and subnets taken
	OpHosts     = "hosts"      // the hosts present
	OpClaim     = "claim"      // ClaimArgs
	OpRelease   = "release"    // []cluster.KV
	OpHeld      = "held"       // []cluster.KV
	OpResetHost = "reset-host" // a host's ID: its keys, and all when it is the last
)

// Used is OpUsed's answer.
type Used struct {
	VNIs    map[int]bool   `json:"vnis"`
	Subnets []netip.Prefix `json:"subnets"`
}

// ClaimArgs is OpClaim's argument.
type ClaimArgs struct {
	KVs   []cluster.KV `json:"kvs"`
	Lease int64        `json:"lease"`
}

const (
	unreachable = "error unreachable "
	leaseLost   = "error lease-lost"
)

// ErrorLine is an error as the process answers it: a store that does not
// answer, and a lost lease, keep their type across the socket.
func ErrorLine(err error) string {
	if errors.Is(err, cluster.ErrLeaseLost) {
		return leaseLost
	}
	var u *cluster.UnreachableError
	if errors.As(err, &u) {
		b, _ := json.Marshal(struct {
			Store string `json:"store"`
			Err   string `json:"err"`
		}{u.Store, u.Err.Error()})
		return unreachable + string(b)
	}
	return "error " + strings.ReplaceAll(err.Error(), "\n", "; ")
}

// Store is the cluster store as a command reads and writes it: through
// the host's process (cluster.Store and cluster.Writer).
type Store struct{ Paths store.Paths }

func (s Store) ask(op string, arg, out any) error {
	line := StoreLine + "\x00" + op
	if arg != nil {
		b, err := json.Marshal(arg)
		if err != nil {
			return err
		}
		line += "\x00" + string(b)
	}
	reply, err := ask(s.Paths, line)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal([]byte(reply), out)
}

func (s Store) Networks() (map[string]*store.Network, error) {
	var out map[string]*store.Network
	return out, s.ask(OpNetworks, nil, &out)
}

func (s Store) Endpoints(netID string) ([]cluster.Endpoint, int64, error) {
	var out []cluster.Endpoint
	return out, 0, s.ask(OpEndpoints, netID, &out)
}

func (s Store) Used() (map[int]bool, []netip.Prefix, error) {
	var u Used
	err := s.ask(OpUsed, nil, &u)
	return u.VNIs, u.Subnets, err
}

func (s Store) Hosts() (map[string]cluster.Host, error) {
	var out map[string]cluster.Host
	return out, s.ask(OpHosts, nil, &out)
}

func (s Store) Claim(kvs []cluster.KV, lease int64) (string, error) {
	var taken string
	return taken, s.ask(OpClaim, ClaimArgs{KVs: kvs, Lease: lease}, &taken)
}

func (s Store) Release(kvs []cluster.KV) error { return s.ask(OpRelease, kvs, nil) }

func (s Store) Held(kvs []cluster.KV) (bool, error) {
	var held bool
	return held, s.ask(OpHeld, kvs, &held)
}

// ResetHost removes a host's keys, and every key of ours when no other
// host is left.
func (s Store) ResetHost(id string) error { return s.ask(OpResetHost, id, nil) }
