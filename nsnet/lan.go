package nsnet

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

func init() { plan.Register("lan-link", func() plan.Step { return &LanLink{} }) }

// LanLink is a sandbox's interface straight on a host link (macvlan or
// ipvlan): made inside the sandbox's namespace in one netlink request,
// under a temporary name (older kernels check the name against the
// parent's namespace too), then renamed ethN, as Docker and the CNI
// plugins do. It goes with the namespace.
type LanLink struct {
	Netns  string `json:"netns"`
	Name   string `json:"name"` // ethN
	Temp   string `json:"temp"`
	Type   string `json:"type"` // macvlan, ipvlan
	Parent string `json:"parent"`
	Mode   string `json:"mode"`           // bridge, vepa, private, passthru; l2, l3, l3s
	Flag   string `json:"flag,omitempty"` // ipvlan: bridge, private, vepa
	MAC    string `json:"mac,omitempty"`  // macvlan only: ipvlan shares the parent's
	MTU    int    `json:"mtu,omitempty"`
}

func (s *LanLink) Kind() string { return "lan-link" }

func (s *LanLink) Commands() []string {
	opts := ""
	if s.MAC != "" {
		opts += " address " + s.MAC
	}
	if s.MTU > 0 {
		opts += " mtu " + strconv.Itoa(s.MTU)
	}
	kind := " type " + s.Type + " mode " + s.Mode
	if s.Flag != "" {
		kind += " " + s.Flag
	}
	return []string{
		"ip link add " + s.Temp + " link " + s.Parent + opts + " netns " + s.Netns + kind,
		"ip -n " + s.Netns + " link set " + s.Temp + " name " + s.Name,
	}
}

func (s *LanLink) UndoCommands() []string {
	return []string{"ip -n " + s.Netns + " link del " + s.Name}
}

// Satisfied: the sandbox has the interface, of the link type.
func (s *LanLink) Satisfied(ctx *plan.Context) (bool, error) {
	_, l, err := nsLink(ctx, s.Netns, s.Name)
	return err == nil && l != nil && l.Type() == s.Type, err
}

// Modes as netlink names them.
var (
	macvlanModes = map[string]netlink.MacvlanMode{"bridge": netlink.MACVLAN_MODE_BRIDGE, "vepa": netlink.MACVLAN_MODE_VEPA,
		"private": netlink.MACVLAN_MODE_PRIVATE, "passthru": netlink.MACVLAN_MODE_PASSTHRU}
	ipvlanModes = map[string]netlink.IPVlanMode{"l2": netlink.IPVLAN_MODE_L2, "l3": netlink.IPVLAN_MODE_L3, "l3s": netlink.IPVLAN_MODE_L3S}
	ipvlanFlags = map[string]netlink.IPVlanFlag{"bridge": netlink.IPVLAN_FLAG_BRIDGE, "private": netlink.IPVLAN_FLAG_PRIVATE, "vepa": netlink.IPVLAN_FLAG_VEPA}
)

func (s *LanLink) Apply(ctx *plan.Context) error {
	h, err := handle(ctx, s.Netns)
	if err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("%s: namespace %s does not exist", s.Commands()[0], s.Netns)
	}
	parent, err := netlink.LinkByName(s.Parent)
	if err != nil {
		return fmt.Errorf("the requested parent interface %s was not found on the host: %w", s.Parent, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.ParentIndex, attrs.Namespace = s.Temp, s.MTU, parent.Attrs().Index, netlink.NsFd(int(h.ns))
	if s.MAC != "" {
		if attrs.HardwareAddr, err = net.ParseMAC(s.MAC); err != nil {
			return fmt.Errorf("%s: %w", s.Commands()[0], err)
		}
	}
	var l netlink.Link
	switch s.Type {
	case "macvlan":
		l = &netlink.Macvlan{LinkAttrs: attrs, Mode: macvlanModes[s.Mode]}
	case "ipvlan":
		l = &netlink.IPVlan{LinkAttrs: attrs, Mode: ipvlanModes[s.Mode], Flag: ipvlanFlags[s.Flag]}
	default:
		return fmt.Errorf("unknown link type %q", s.Type)
	}
	if err := netlink.LinkAdd(l); err != nil {
		return fmt.Errorf("failed to create the %s port: %s: %w", s.Type, s.Commands()[0], err)
	}
	tmp, err := h.LinkByName(s.Temp)
	if err == nil {
		err = h.LinkSetName(tmp, s.Name)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[1], err)
	}
	// Up here, waiting a moment for a namespace being torn down (restore
	// after 'ip netns del', its last socket just closed) to let go of a
	// port with the same MAC: the kernel refuses two up on one parent.
	if err := whileDying(unix.EADDRINUSE, func() error { return h.LinkSetUp(tmp) }); err != nil {
		return fmt.Errorf("ip -n %s link set %s up: %w", s.Netns, s.Name, err)
	}
	return nil
}

func (s *LanLink) Undo(ctx *plan.Context) error {
	h, l, err := nsLink(ctx, s.Netns, s.Name)
	if err != nil || l == nil {
		return err
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) && !bridge.NotFound(err) {
		return fmt.Errorf("%s: %w", s.UndoCommands()[0], err)
	}
	return nil
}
