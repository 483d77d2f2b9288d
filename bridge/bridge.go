// Package bridge creates and inspects the Linux bridges behind networks,
// through netlink only.
package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/plan"
)

func init() {
	plan.Register("bridge-create", func() plan.Step { return &Create{} })
	plan.Register("bridge-addr", func() plan.Step { return &Addr{} })
	plan.Register("bridge-up", func() plan.Step { return &Up{} })
}

// Prefix starts the name of every host interface minidocker-net creates.
const Prefix = "mdn"

// NotFound reports whether err means the link does not exist.
func NotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENODEV)
}

// Create adds a bridge. nf_call_iptables is set on this bridge only (not the
// host-wide br_netfilter sysctl) so that iptables sees traffic between two
// sandboxes of the network: icc=false and a sandbox reaching a published
// port of its neighbour depend on it.
type Create struct {
	Name  string `json:"name"`
	MTU   int    `json:"mtu,omitempty"`
	MAC   string `json:"mac"`
	Alias string `json:"alias"`
}

func (s *Create) Kind() string { return "bridge-create" }

func (s *Create) Commands() []string {
	mtu := ""
	if s.MTU > 0 {
		mtu = " mtu " + strconv.Itoa(s.MTU)
	}
	return []string{
		"ip link add " + s.Name + " address " + s.MAC + mtu + " type bridge nf_call_iptables 1",
		"ip link set " + s.Name + " alias " + plan.Quote(s.Alias),
	}
}

func (s *Create) UndoCommands() []string { return []string{"ip link del " + s.Name} }

// Satisfied: the bridge exists, with its alias.
func (s *Create) Satisfied(*plan.Context) (bool, error) {
	l, err := netlink.LinkByName(s.Name)
	if NotFound(err) {
		return false, nil
	}
	return err == nil && l.Type() == "bridge" && l.Attrs().Alias == s.Alias, err
}

func (s *Create) Apply(*plan.Context) error {
	l, err := netlink.LinkByName(s.Name)
	if err == nil {
		if l.Type() != "bridge" {
			return fmt.Errorf("create bridge %s: an interface of type %s already has that name", s.Name, l.Type())
		}
		return setNfCallIptables(l.Attrs().Index)
	}
	if !NotFound(err) {
		return fmt.Errorf("look up %s: %w", s.Name, err)
	}
	mac, err := net.ParseMAC(s.MAC)
	if err != nil {
		return fmt.Errorf("create bridge %s: %w", s.Name, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.HardwareAddr = s.Name, s.MTU, mac
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("ip link add %s type bridge: %w", s.Name, err)
	}
	if err := setNfCallIptables(br.Index); err != nil {
		return fmt.Errorf("bridge %s: %w", s.Name, err)
	}
	// The kernel ignores IFLA_IFALIAS when a link is created.
	if err := netlink.LinkSetAlias(br, s.Alias); err != nil {
		return fmt.Errorf("ip link set %s alias: %w", s.Name, err)
	}
	return nil
}

func (s *Create) Undo(*plan.Context) error {
	l, err := netlink.LinkByName(s.Name)
	if NotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", s.Name, err)
	}
	if l.Type() != "bridge" {
		return fmt.Errorf("delete bridge %s: it is a %s now, left alone", s.Name, l.Type())
	}
	if err := netlink.LinkDel(l); err != nil && !NotFound(err) {
		return fmt.Errorf("ip link del %s: %w", s.Name, err)
	}
	return nil
}

// setNfCallIptables sets IFLA_BR_NF_CALL_IPTABLES, which the netlink
// library's Bridge type does not carry.
func setNfCallIptables(index int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_BR_NF_CALL_IPTABLES, []byte{1})
	req.AddData(info)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("set nf_call_iptables: %w", err)
	}
	return nil
}

// Addr puts an address (the network's gateway) on a link of the host.
type Addr struct {
	Link string       `json:"link"`
	CIDR netip.Prefix `json:"cidr"`
}

func (s *Addr) Kind() string { return "bridge-addr" }
func (s *Addr) Commands() []string {
	return []string{"ip addr add " + s.CIDR.String() + " dev " + s.Link + AddrFlags(s.CIDR)}
}

// AddrFlags is how `ip addr add` writes what NetlinkAddr gives netlink:
// the broadcast address for IPv4 ("brd +"), no duplicate address
// detection for IPv6, as Docker adds its addresses (usable at once; IPAM
// already made them unique).
func AddrFlags(p netip.Prefix) string {
	if p.Addr().Is6() {
		return " nodad"
	}
	return " brd +"
}
func (s *Addr) UndoCommands() []string {
	return []string{"ip addr del " + s.CIDR.String() + " dev " + s.Link}
}

// Satisfied: the link has the address.
func (s *Addr) Satisfied(*plan.Context) (bool, error) {
	l, err := netlink.LinkByName(s.Link)
	if NotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fam := netlink.FAMILY_V4
	if s.CIDR.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(l, fam)
	for _, a := range addrs {
		if a.IPNet.String() == s.CIDR.String() {
			return true, nil
		}
	}
	return false, err
}

func (s *Addr) Apply(*plan.Context) error {
	l, err := netlink.LinkByName(s.Link)
	if err != nil {
		return fmt.Errorf("look up %s: %w", s.Link, err)
	}
	if err := netlink.AddrReplace(l, NetlinkAddr(s.CIDR)); err != nil {
		return fmt.Errorf("ip addr add %s dev %s: %w", s.CIDR, s.Link, err)
	}
	return nil
}

func (s *Addr) Undo(*plan.Context) error {
	l, err := netlink.LinkByName(s.Link)
	if NotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", s.Link, err)
	}
	if err := netlink.AddrDel(l, NetlinkAddr(s.CIDR)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !NotFound(err) {
		return fmt.Errorf("ip addr del %s dev %s: %w", s.CIDR, s.Link, err)
	}
	return nil
}

// NetlinkAddr is a prefix as netlink adds it (see AddrFlags).
func NetlinkAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// Up brings a link of the host up.
type Up struct {
	Link string `json:"link"`
}

func (s *Up) Kind() string           { return "bridge-up" }
func (s *Up) Commands() []string     { return []string{"ip link set " + s.Link + " up"} }
func (s *Up) UndoCommands() []string { return []string{"ip link set " + s.Link + " down"} }

// Satisfied: the link is up.
func (s *Up) Satisfied(*plan.Context) (bool, error) {
	l, err := netlink.LinkByName(s.Link)
	if NotFound(err) {
		return false, nil
	}
	return err == nil && l.Attrs().Flags&net.FlagUp != 0, err
}

func (s *Up) Apply(*plan.Context) error {
	l, err := netlink.LinkByName(s.Link)
	if err != nil {
		return fmt.Errorf("look up %s: %w", s.Link, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("ip link set %s up: %w", s.Link, err)
	}
	return nil
}

func (s *Up) Undo(*plan.Context) error {
	l, err := netlink.LinkByName(s.Link)
	if NotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", s.Link, err)
	}
	if err := netlink.LinkSetDown(l); err != nil && !NotFound(err) {
		return fmt.Errorf("ip link set %s down: %w", s.Link, err)
	}
	return nil
}

// MACFor derives a MAC from an IPv4 address as Docker 20.10 does
// (02:42 + the four address bytes), so the address can be read off the MAC.
// MACFor6 is MACFor for an IPv6-only network: 02:42 and the address's
// last four bytes.
func MACFor6(a netip.Addr) string {
	b := a.As16()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[12], b[13], b[14], b[15])
}

func MACFor(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}
