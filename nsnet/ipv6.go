package nsnet

import (
	"os"

	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

func init() { plan.Register("ns-ipv6", func() plan.Step { return &IPv6On{} }) }

// IPv6On turns IPv6 on for one interface of a sandbox. Sandboxes start
// with it off everywhere (see Netns); Docker turns it on for an endpoint
// with an IPv6 address, which also gives the interface its link-local
// address from its MAC.
type IPv6On struct {
	Netns string `json:"netns"`
	Link  string `json:"link"`
}

func (s *IPv6On) key() string  { return "net.ipv6.conf." + s.Link + ".disable_ipv6" }
func (s *IPv6On) Kind() string { return "ns-ipv6" }
func (s *IPv6On) Commands() []string {
	return []string{"ip netns exec " + s.Netns + " sysctl -qw " + s.key() + "=0"}
}
func (s *IPv6On) UndoCommands() []string {
	return []string{"ip netns exec " + s.Netns + " sysctl -qw " + s.key() + "=1"}
}

// Satisfied: the interface has IPv6 on.
func (s *IPv6On) Satisfied(*plan.Context) (bool, error) {
	if !Exists(s.Netns) {
		return false, nil
	}
	var v string
	err := Within(Path(s.Netns), func() error {
		var err error
		v, err = sysctl.Get(s.key())
		return err
	})
	return err == nil && v == "0", nil
}

func (s *IPv6On) Apply(*plan.Context) error { return s.set("0", true) }
func (s *IPv6On) Undo(*plan.Context) error  { return s.set("1", false) }

// set writes the key in the sandbox; undoing where the namespace or the
// interface is gone has nothing left to do.
func (s *IPv6On) set(v string, strict bool) error {
	if !Exists(s.Netns) && !strict {
		return nil
	}
	return Within(Path(s.Netns), func() error {
		if _, err := os.Stat(sysctl.Path(s.key())); os.IsNotExist(err) && !strict {
			return nil
		}
		return sysctl.Set(s.key(), v)
	})
}
