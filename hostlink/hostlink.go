// Package hostlink owns the host links minidocker-net creates for its
// drivers, beside bridges: an 802.1Q VLAN link (eth0.10) that a macvlan or
// ipvlan network names as its parent, and the dummy link of a parentless
// one.
package hostlink

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/plan"
)

func init() { plan.Register("host-link", func() plan.Step { return &Create{} }) }

// Create makes a host link, up: Type "vlan" (VlanID on Parent) or
// "dummy". Undoing deletes it, only if it is still of that type.
type Create struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Parent string `json:"parent,omitempty"`
	VlanID int    `json:"vlan_id,omitempty"`
}

func (s *Create) Kind() string { return "host-link" }

func (s *Create) Commands() []string {
	add := "ip link add " + s.Name + " type dummy"
	if s.Type == "vlan" {
		add = "ip link add link " + s.Parent + " name " + s.Name + " type vlan id " + strconv.Itoa(s.VlanID)
	}
	return []string{add, "ip link set " + s.Name + " up"}
}

func (s *Create) UndoCommands() []string { return []string{"ip link del " + s.Name} }

// Satisfied: the link exists, of its type, and is up.
func (s *Create) Satisfied(*plan.Context) (bool, error) {
	l, err := netlink.LinkByName(s.Name)
	if bridge.NotFound(err) {
		return false, nil
	}
	return err == nil && l.Type() == s.Type && l.Attrs().Flags&net.FlagUp != 0, err
}

func (s *Create) Apply(*plan.Context) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.Flags = s.Name, net.FlagUp
	var l netlink.Link = &netlink.Dummy{LinkAttrs: attrs}
	if s.Type == "vlan" {
		parent, err := netlink.LinkByName(s.Parent)
		if err != nil {
			return fmt.Errorf("-o parent interface was not found on the host: %s: %w", s.Parent, err)
		}
		attrs.ParentIndex = parent.Attrs().Index
		l = &netlink.Vlan{LinkAttrs: attrs, VlanId: s.VlanID}
	}
	if err := netlink.LinkAdd(l); err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[0], err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[1], err)
	}
	return nil
}

func (s *Create) Undo(*plan.Context) error {
	l, err := netlink.LinkByName(s.Name)
	if bridge.NotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Type() != s.Type {
		return nil // not ours any more: another link took the name
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%s: %w", s.UndoCommands()[0], err)
	}
	return nil
}
