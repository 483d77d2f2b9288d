package nsnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/plan"
)

// Veth creates a veth pair in one netlink request: the host end, up and on
// the bridge, and the peer directly inside the sandbox's namespace under its
// final name (eth0, eth1, ...), so it never appears on the host.
type Veth struct {
	Host    string `json:"host"`
	HostMAC string `json:"host_mac"`
	Peer    string `json:"peer"`
	Netns   string `json:"netns"`
	MAC     string `json:"mac"`
	MTU     int    `json:"mtu,omitempty"`
	Bridge  string `json:"bridge"`
	Alias   string `json:"alias"`
}

func (s *Veth) Kind() string { return "veth" }

func (s *Veth) Commands() []string {
	mtu := ""
	if s.MTU > 0 {
		mtu = " mtu " + strconv.Itoa(s.MTU)
	}
	return []string{
		"ip link add " + s.Host + " address " + s.HostMAC + mtu + " type veth peer name " + s.Peer + " address " + s.MAC + " netns " + s.Netns,
		"ip link set " + s.Host + " master " + s.Bridge + " alias " + plan.Quote(s.Alias) + " up",
		"bridge link set dev " + s.Host + " hairpin on",
	}
}

func (s *Veth) UndoCommands() []string { return []string{"ip link del " + s.Host} }

// Released: removing a whole sandbox releases the pair (see Release).
func (s *Veth) Released() plan.Step { return &Release{Veth: *s} }

// Satisfied: the host end is up on its bridge, in hairpin mode, and the
// peer is in the sandbox.
func (s *Veth) Satisfied(ctx *plan.Context) (bool, error) {
	l, err := s.hostLink()
	if err != nil || l == nil {
		return false, err
	}
	br, err := netlink.LinkByName(s.Bridge)
	if err != nil || l.Attrs().MasterIndex != br.Attrs().Index || l.Attrs().Flags&net.FlagUp == 0 {
		return false, nil
	}
	if p := l.Attrs().Protinfo; p == nil || !p.Hairpin {
		if info, err := netlink.LinkGetProtinfo(l); err != nil || !info.Hairpin {
			return false, nil
		}
	}
	_, peer, err := nsLink(ctx, s.Netns, s.Peer)
	return err == nil && peer != nil, nil
}

func (s *Veth) Apply(ctx *plan.Context) error {
	if l, err := s.hostLink(); err != nil {
		return err
	} else if l != nil {
		if l.Type() != "veth" {
			return fmt.Errorf("create veth %s: an interface of type %s already has that name", s.Host, l.Type())
		}
		return s.attach(l) // in place: make sure it is on the bridge (which may have been recreated)
	}
	h, err := handle(ctx, s.Netns)
	if err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("create veth %s: namespace %s does not exist", s.Host, s.Netns)
	}
	br, err := netlink.LinkByName(s.Bridge)
	if err != nil {
		return fmt.Errorf("create veth %s: bridge %s: %w", s.Host, s.Bridge, err)
	}
	mac, err := net.ParseMAC(s.MAC)
	if err != nil {
		return fmt.Errorf("create veth %s: %w", s.Host, err)
	}
	hostMAC, err := net.ParseMAC(s.HostMAC)
	if err != nil {
		return fmt.Errorf("create veth %s: %w", s.Host, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.Flags, attrs.HardwareAddr = s.Host, s.MTU, net.FlagUp, hostMAC
	attrs.MasterIndex = br.Attrs().Index
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         s.Peer,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(int(h.ns)),
		PeerMTU:          uint32(s.MTU),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("ip link add %s type veth peer name %s netns %s: %s already exists in the sandbox", s.Host, s.Peer, s.Netns, s.Peer)
		}
		return fmt.Errorf("ip link add %s type veth peer name %s netns %s: %w", s.Host, s.Peer, s.Netns, err)
	}
	// The kernel ignores IFLA_IFALIAS when a link is created.
	if err := netlink.LinkSetAlias(veth, s.Alias); err != nil {
		return fmt.Errorf("ip link set %s alias: %w", s.Host, err)
	}
	return s.hairpin(veth)
}

// attach puts an existing host end back on its bridge, up, in hairpin mode.
func (s *Veth) attach(l netlink.Link) error {
	br, err := netlink.LinkByName(s.Bridge)
	if err != nil {
		return fmt.Errorf("veth %s: bridge %s: %w", s.Host, s.Bridge, err)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("ip link set %s master %s: %w", s.Host, s.Bridge, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("ip link set %s up: %w", s.Host, err)
	}
	return s.hairpin(l)
}

// A sandbox reaching its own published port: after DNAT, br_netfilter
// bridges the frame back out of the port it came in on, which the bridge
// allows only in hairpin mode (Docker sets it for the same reason).
func (s *Veth) hairpin(l netlink.Link) error {
	if err := netlink.LinkSetHairpin(l, true); err != nil {
		return fmt.Errorf("bridge link set dev %s hairpin on: %w", s.Host, err)
	}
	return nil
}

// hostLink returns the host end, or nil when there is none.
func (s *Veth) hostLink() (netlink.Link, error) {
	l, err := netlink.LinkByName(s.Host)
	if bridge.NotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", s.Host, err)
	}
	return l, nil
}

func (s *Veth) Undo(*plan.Context) error {
	l, err := s.hostLink()
	if l == nil {
		return err
	}
	if err := netlink.LinkDel(l); err != nil && !bridge.NotFound(err) {
		return fmt.Errorf("ip link del %s: %w", s.Host, err)
	}
	return nil
}

// Release is how removing a whole sandbox undoes its Veth: it takes the
// host end off the bridge and down, and leaves the pair to the kernel, which
// deletes it with the sandbox's namespace, in the background. Deleting it
// here would make the command wait for an RCU barrier, about 15 ms per
// interface. Detached and down, an end whose namespace outlives the command
// (another process holds it) carries no traffic, and reset removes it.
type Release struct{ Veth }

func (s *Release) Kind() string { return "veth-release" }

// Released reports a host end as Release leaves it: ours, down and on no
// bridge.
func Released(l netlink.Link) bool {
	a := l.Attrs()
	return l.Type() == "veth" && strings.HasPrefix(a.Name, bridge.Prefix) && a.MasterIndex == 0 && a.Flags&net.FlagUp == 0
}

func (s *Release) Commands() []string {
	return []string{"ip link set " + s.Host + " nomaster down  # the kernel deletes the pair with namespace " + s.Netns}
}

func (s *Release) UndoCommands() []string { return s.Veth.Commands() }

func (s *Release) Apply(*plan.Context) error {
	l, err := s.hostLink()
	if l == nil {
		return err
	}
	if err := netlink.LinkSetDown(l); err != nil && !bridge.NotFound(err) {
		return fmt.Errorf("ip link set %s down: %w", s.Host, err)
	}
	if err := netlink.LinkSetNoMaster(l); err != nil && !bridge.NotFound(err) {
		return fmt.Errorf("ip link set %s nomaster: %w", s.Host, err)
	}
	return nil
}

// Undo puts the end back on its bridge while its peer is still in the
// sandbox; once the namespace is gone (and was recreated by the rollback),
// the old end is stale: it is deleted and the pair made anew.
func (s *Release) Undo(ctx *plan.Context) error {
	h, err := handle(ctx, s.Netns)
	if err != nil {
		return err
	}
	if h != nil {
		if _, err := h.LinkByName(s.Peer); err == nil {
			if l, _ := s.hostLink(); l != nil {
				return s.attach(l)
			}
		}
	}
	if err := s.Veth.Undo(ctx); err != nil {
		return err
	}
	return s.Veth.Apply(ctx)
}

// Addr puts an address on an interface inside a sandbox.
type Addr struct {
	Netns string       `json:"netns"`
	Link  string       `json:"link"`
	CIDR  netip.Prefix `json:"cidr"`
}

func (s *Addr) Kind() string { return "ns-addr" }
func (s *Addr) Commands() []string {
	return []string{"ip -n " + s.Netns + " addr add " + s.CIDR.String() + " dev " + s.Link + bridge.AddrFlags(s.CIDR)}
}

// family is netlink's name of a prefix's address family.
func family(a netip.Addr) int {
	if a.Is6() {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// Satisfied: the interface has the address.
func (s *Addr) Satisfied(ctx *plan.Context) (bool, error) {
	h, l, err := nsLink(ctx, s.Netns, s.Link)
	if err != nil || l == nil {
		return false, err
	}
	addrs, err := h.AddrList(l, family(s.CIDR.Addr()))
	for _, a := range addrs {
		if a.IPNet.String() == s.CIDR.String() {
			return true, nil
		}
	}
	return false, err
}
func (s *Addr) UndoCommands() []string {
	return []string{"ip -n " + s.Netns + " addr del " + s.CIDR.String() + " dev " + s.Link}
}

// nsLink finds a link in a namespace; nil, nil when namespace or link is gone.
func nsLink(ctx *plan.Context, ns, name string) (*Handle, netlink.Link, error) {
	h, err := handle(ctx, ns)
	if err != nil || h == nil {
		return nil, nil, err
	}
	l, err := h.LinkByName(name)
	if bridge.NotFound(err) {
		return h, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up %s in %s: %w", name, ns, err)
	}
	return h, l, nil
}

func (s *Addr) Apply(ctx *plan.Context) error {
	h, l, err := nsLink(ctx, s.Netns, s.Link)
	if err == nil && l == nil {
		err = fmt.Errorf("%s does not exist in %s", s.Link, s.Netns)
	}
	if err == nil {
		err = h.AddrReplace(l, bridge.NetlinkAddr(s.CIDR))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[0], err)
	}
	return nil
}

func (s *Addr) Undo(ctx *plan.Context) error {
	h, l, err := nsLink(ctx, s.Netns, s.Link)
	if err != nil || l == nil {
		return err
	}
	if err := h.AddrDel(l, bridge.NetlinkAddr(s.CIDR)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("%s: %w", s.UndoCommands()[0], err)
	}
	return nil
}

// Up brings an interface inside a sandbox up.
type Up struct {
	Netns string `json:"netns"`
	Link  string `json:"link"`
}

func (s *Up) Kind() string       { return "ns-up" }
func (s *Up) Commands() []string { return []string{"ip -n " + s.Netns + " link set " + s.Link + " up"} }
func (s *Up) UndoCommands() []string {
	return []string{"ip -n " + s.Netns + " link set " + s.Link + " down"}
}

// Satisfied: the interface is up.
func (s *Up) Satisfied(ctx *plan.Context) (bool, error) {
	_, l, err := nsLink(ctx, s.Netns, s.Link)
	return err == nil && l != nil && l.Attrs().Flags&net.FlagUp != 0, err
}

func (s *Up) Apply(ctx *plan.Context) error {
	h, l, err := nsLink(ctx, s.Netns, s.Link)
	if err == nil && l == nil {
		err = fmt.Errorf("%s does not exist in %s", s.Link, s.Netns)
	}
	if err == nil {
		err = h.LinkSetUp(l)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[0], err)
	}
	return nil
}

func (s *Up) Undo(ctx *plan.Context) error {
	h, l, err := nsLink(ctx, s.Netns, s.Link)
	if err != nil || l == nil {
		return err
	}
	if err := h.LinkSetDown(l); err != nil {
		return fmt.Errorf("%s: %w", s.UndoCommands()[0], err)
	}
	return nil
}

// Gateway is a default route: via an address on one interface, or with
// no address straight out of it (ipvlan L3's "default dev eth0").
type Gateway struct {
	Via  netip.Addr `json:"via"`
	Link string     `json:"link"`
}

// DefaultRoute sets a sandbox's default route; undo puts the previous one
// back (or none). Connecting a network can move the default route, as
// Docker's gateway selection does.
type DefaultRoute struct {
	Netns string   `json:"netns"`
	To    *Gateway `json:"to"`             // nil: no default route
	From  *Gateway `json:"from"`           // the route before, nil if none
	IPv6  bool     `json:"ipv6,omitempty"` // the IPv6 default route (each family has its own)
}

func (s *DefaultRoute) Kind() string { return "ns-route" }

func routeCmd(ns string, g *Gateway, v6 bool) string {
	ip := "ip -n " + ns
	if v6 {
		ip += " -6"
	}
	if g == nil {
		return ip + " route del default"
	}
	if !g.Via.IsValid() {
		return ip + " route replace default dev " + g.Link
	}
	return ip + " route replace default via " + g.Via.String() + " dev " + g.Link
}

func (s *DefaultRoute) Commands() []string     { return []string{routeCmd(s.Netns, s.To, s.IPv6)} }
func (s *DefaultRoute) UndoCommands() []string { return []string{routeCmd(s.Netns, s.From, s.IPv6)} }

func (s *DefaultRoute) family() int {
	if s.IPv6 {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// Satisfied: the default route is the one wanted (or none, as wanted).
func (s *DefaultRoute) Satisfied(ctx *plan.Context) (bool, error) {
	h, err := handle(ctx, s.Netns)
	if err != nil || h == nil {
		return false, err
	}
	routes, err := h.RouteList(nil, s.family())
	if err != nil {
		return false, err
	}
	for _, r := range routes {
		if r.Dst != nil && !r.Dst.IP.IsUnspecified() {
			continue
		}
		if s.To == nil {
			return false, nil
		}
		l, err := h.LinkByIndex(r.LinkIndex)
		if !s.To.Via.IsValid() {
			return err == nil && r.Gw == nil && l.Attrs().Name == s.To.Link, nil
		}
		return err == nil && r.Gw != nil && r.Gw.Equal(s.To.Via.AsSlice()) && l.Attrs().Name == s.To.Link, nil
	}
	return s.To == nil, nil
}

func (s *DefaultRoute) Apply(ctx *plan.Context) error {
	return setDefault(ctx, s.Netns, s.To, s.IPv6, true)
}
func (s *DefaultRoute) Undo(ctx *plan.Context) error {
	return setDefault(ctx, s.Netns, s.From, s.IPv6, false)
}

func setDefault(ctx *plan.Context, ns string, g *Gateway, v6, strict bool) error {
	h, err := handle(ctx, ns)
	if err != nil {
		return err
	}
	if h == nil {
		if strict {
			return fmt.Errorf("set default route: namespace %s does not exist", ns)
		}
		return nil
	}
	if g == nil {
		def := &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
		if v6 {
			def = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		}
		err := h.RouteDel(&netlink.Route{Dst: def, Table: unix.RT_TABLE_MAIN})
		if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s: %w", routeCmd(ns, nil, v6), err)
		}
		return nil
	}
	l, err := h.LinkByName(g.Link)
	if err != nil {
		if !strict && bridge.NotFound(err) {
			return nil
		}
		return fmt.Errorf("%s: %w", routeCmd(ns, g, v6), err)
	}
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: g.Via.AsSlice(), Table: unix.RT_TABLE_MAIN}
	if v6 {
		r.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	if !g.Via.IsValid() {
		r.Gw, r.Scope = nil, netlink.SCOPE_LINK
		if !v6 {
			r.Dst = &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
		}
	}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("%s: %w", routeCmd(ns, g, v6), err)
	}
	return nil
}
