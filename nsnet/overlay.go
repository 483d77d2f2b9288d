package nsnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/bridge"
	"github.com/minidocker-net/minidocker-net/plan"
)

// VXLANPort is the IANA port Docker's overlay uses.
const VXLANPort = 4789

func init() {
	plan.Register("overlay-bridge", func() plan.Step { return &OverlayBridge{} })
	plan.Register("overlay-veth", func() plan.Step { return &OverlayVeth{} })
}

// OverlayBridge is an overlay network's part on one host, as Docker's
// overlay driver lays it out inside the network's own namespace: a bridge
// holding the gateway and a VXLAN device on it. The VXLAN device is made
// from the host's namespace directly into the network's, so its UDP
// socket stays in the host's namespace, where the tunnel's packets
// arrive. Learning is off: every remote endpoint is a static neighbour
// and forwarding entry the cluster agent writes, so a dead host's entries
// go exactly when its lease does. ARP proxy is on, as Docker's: the
// device answers a sandbox's ARP for a remote endpoint from those
// neighbours, so no broadcast has to cross the tunnel.
type OverlayBridge struct {
	Netns   string       `json:"netns"`
	Bridge  string       `json:"bridge"`
	Vxlan   string       `json:"vxlan"`
	VNI     int          `json:"vni"`
	Gateway netip.Prefix `json:"gateway"`
}

func (s *OverlayBridge) Kind() string { return "overlay-bridge" }

func (s *OverlayBridge) Commands() []string {
	return []string{
		"ip -n " + s.Netns + " link add " + s.Bridge + " type bridge",
		"ip -n " + s.Netns + " addr add " + s.Gateway.String() + " dev " + s.Bridge,
		"ip link add " + s.Vxlan + " netns " + s.Netns + " type vxlan id " + strconv.Itoa(s.VNI) + " dstport " + strconv.Itoa(VXLANPort) + " nolearning proxy",
		"ip -n " + s.Netns + " link set " + s.Vxlan + " master " + s.Bridge + " up",
		"ip -n " + s.Netns + " link set " + s.Bridge + " up",
	}
}

func (s *OverlayBridge) UndoCommands() []string {
	return []string{"ip -n " + s.Netns + " link del " + s.Vxlan, "ip -n " + s.Netns + " link del " + s.Bridge}
}

// Satisfied: both links are up, the VXLAN device on the bridge.
func (s *OverlayBridge) Satisfied(ctx *plan.Context) (bool, error) {
	_, br, err := nsLink(ctx, s.Netns, s.Bridge)
	if err != nil || br == nil {
		return false, err
	}
	_, vx, err := nsLink(ctx, s.Netns, s.Vxlan)
	if err != nil || vx == nil {
		return false, err
	}
	return vx.Attrs().MasterIndex == br.Attrs().Index && br.Attrs().Flags&net.FlagUp != 0 && vx.Attrs().Flags&net.FlagUp != 0, nil
}

func (s *OverlayBridge) Apply(ctx *plan.Context) error {
	h, err := handle(ctx, s.Netns)
	if err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("overlay %s: namespace %s does not exist", s.Bridge, s.Netns)
	}
	_, br, err := nsLink(ctx, s.Netns, s.Bridge)
	if err != nil {
		return err
	}
	if br == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = s.Bridge
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return fmt.Errorf("%s: %w", s.Commands()[0], err)
		}
		if br, err = h.LinkByName(s.Bridge); err != nil {
			return err
		}
	}
	if err := h.AddrReplace(br, bridge.NetlinkAddr(s.Gateway)); err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[1], err)
	}
	_, vx, err := nsLink(ctx, s.Netns, s.Vxlan)
	if err != nil {
		return err
	}
	if vx == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = s.Vxlan
		attrs.Namespace = netlink.NsFd(int(h.ns))
		link := &netlink.Vxlan{LinkAttrs: attrs, VxlanId: s.VNI, Port: VXLANPort, Learning: false, Proxy: true}
		if err := whileDying(unix.EEXIST, func() error { return netlink.LinkAdd(link) }); err != nil {
			return fmt.Errorf("%s: %w", s.Commands()[2], err)
		}
		if vx, err = h.LinkByName(s.Vxlan); err != nil {
			return err
		}
	}
	if err := h.LinkSetMaster(vx, br); err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[3], err)
	}
	if err := h.LinkSetUp(vx); err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[3], err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[4], err)
	}
	return nil
}

func (s *OverlayBridge) Undo(ctx *plan.Context) error {
	var errs []error
	for _, name := range []string{s.Vxlan, s.Bridge} {
		h, l, err := nsLink(ctx, s.Netns, name)
		if err == nil && l != nil {
			if err = h.LinkDel(l); bridge.NotFound(err) {
				err = nil
			}
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// OverlayVeth joins a sandbox to an overlay network: a veth pair made
// from the host's namespace with one end in the network's namespace, on
// its bridge, and the other in the sandbox under its final name, with the
// tunnel's smaller MTU (1500 less 50 bytes of VXLAN encapsulation).
type OverlayVeth struct {
	Netns   string `json:"netns"` // the network's
	Bridge  string `json:"bridge"`
	Host    string `json:"host"`
	Sandbox string `json:"sandbox"`
	Peer    string `json:"peer"`
	MAC     string `json:"mac"`
	MTU     int    `json:"mtu"`
}

func (s *OverlayVeth) Kind() string { return "overlay-veth" }

func (s *OverlayVeth) Commands() []string {
	mtu := strconv.Itoa(s.MTU)
	return []string{
		"ip link add " + s.Host + " netns " + s.Netns + " mtu " + mtu + " type veth peer name " + s.Peer + " address " + s.MAC + " mtu " + mtu + " netns " + s.Sandbox,
		"ip -n " + s.Netns + " link set " + s.Host + " master " + s.Bridge + " up",
	}
}

func (s *OverlayVeth) UndoCommands() []string {
	return []string{"ip -n " + s.Netns + " link del " + s.Host}
}

// Satisfied: the network's end is up on the bridge and the peer is in
// the sandbox.
func (s *OverlayVeth) Satisfied(ctx *plan.Context) (bool, error) {
	_, l, err := nsLink(ctx, s.Netns, s.Host)
	if err != nil || l == nil {
		return false, err
	}
	_, br, err := nsLink(ctx, s.Netns, s.Bridge)
	if err != nil || br == nil || l.Attrs().MasterIndex != br.Attrs().Index || l.Attrs().Flags&net.FlagUp == 0 {
		return false, err
	}
	_, peer, err := nsLink(ctx, s.Sandbox, s.Peer)
	return err == nil && peer != nil, err
}

func (s *OverlayVeth) Apply(ctx *plan.Context) error {
	nh, err := handle(ctx, s.Netns)
	if err != nil {
		return err
	}
	sh, err := handle(ctx, s.Sandbox)
	if err != nil {
		return err
	}
	if nh == nil || sh == nil {
		return fmt.Errorf("%s: a namespace does not exist", s.Commands()[0])
	}
	_, l, err := nsLink(ctx, s.Netns, s.Host)
	if err != nil {
		return err
	}
	if l == nil {
		mac, err := net.ParseMAC(s.MAC)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Commands()[0], err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = s.Host, s.MTU
		attrs.Namespace = netlink.NsFd(int(nh.ns))
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: s.Peer, PeerHardwareAddr: mac, PeerMTU: uint32(s.MTU), PeerNamespace: netlink.NsFd(int(sh.ns))}
		if err := whileDying(unix.EEXIST, func() error { return netlink.LinkAdd(veth) }); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("%s: %s already exists in the sandbox", s.Commands()[0], s.Peer)
			}
			return fmt.Errorf("%s: %w", s.Commands()[0], err)
		}
		if l, err = nh.LinkByName(s.Host); err != nil {
			return err
		}
	}
	br, err := nh.LinkByName(s.Bridge)
	if err == nil {
		err = nh.LinkSetMaster(l, br)
	}
	if err == nil {
		err = nh.LinkSetUp(l)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[1], err)
	}
	return nil
}

func (s *OverlayVeth) Undo(ctx *plan.Context) error {
	h, l, err := nsLink(ctx, s.Netns, s.Host)
	if err != nil || l == nil {
		return err
	}
	if err := h.LinkDel(l); err != nil && !bridge.NotFound(err) {
		return fmt.Errorf("%s: %w", s.UndoCommands()[0], err)
	}
	return nil
}

// Peer is a remote endpoint as one host's tunnel knows it: its address and
// MAC behind the VTEP of the host it lives on.
type Peer struct {
	IP   netip.Addr
	MAC  string
	VTEP netip.Addr
}

// SetPeers makes an overlay network's namespace know exactly these remote
// endpoints: for each a permanent neighbour (IP to MAC) and a forwarding
// entry (MAC to VTEP) on the VXLAN device, as Docker's peerAdd writes
// them; entries of endpoints no longer there are deleted. It reports how
// many entries it changed.
func SetPeers(netnsName, vxlan string, peers []Peer) (int, error) {
	if !Exists(netnsName) {
		return 0, nil
	}
	h, err := Open(netnsName)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	vx, err := h.LinkByName(vxlan)
	if err != nil {
		return 0, fmt.Errorf("overlay %s: %w", vxlan, err)
	}
	idx := vx.Attrs().Index
	wantNeigh := map[netip.Addr]string{}
	wantFDB := map[string]netip.Addr{}
	for _, p := range peers {
		wantNeigh[p.IP] = p.MAC
		wantFDB[p.MAC] = p.VTEP
	}
	changed := 0
	var errs []error
	neighs, err := h.NeighList(idx, netlink.FAMILY_V4)
	if err != nil {
		return 0, fmt.Errorf("ip -n %s neigh show dev %s: %w", netnsName, vxlan, err)
	}
	have := map[netip.Addr]string{}
	for _, n := range neighs {
		a, _ := netip.AddrFromSlice(n.IP)
		a = a.Unmap()
		if mac, ok := wantNeigh[a]; !ok || mac != n.HardwareAddr.String() || n.State != netlink.NUD_PERMANENT {
			if err := h.NeighDel(&n); err == nil {
				changed++
			}
			continue
		}
		have[a] = n.HardwareAddr.String()
	}
	fdbs, err := h.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return 0, fmt.Errorf("bridge -n %s fdb show dev %s: %w", netnsName, vxlan, err)
	}
	haveFDB := map[string]bool{}
	for _, n := range fdbs {
		if n.LinkIndex != idx {
			continue // a dump may hold the bridge's other ports' entries
		}
		if n.IP == nil {
			// The bridge's own entry for the port, or one it learned: a
			// learned MAC of an endpoint gone goes too (as Docker's
			// DeleteNeighbor), rather than age out in 5 minutes.
			if _, ok := wantFDB[n.HardwareAddr.String()]; !ok && n.MasterIndex != 0 && n.State&netlink.NUD_PERMANENT == 0 {
				n.Flags |= netlink.NTF_MASTER
				if err := h.NeighDel(&n); err == nil {
					changed++
				}
			}
			continue
		}
		a, _ := netip.AddrFromSlice(n.IP)
		mac := n.HardwareAddr.String()
		if vtep, ok := wantFDB[mac]; !ok || vtep != a.Unmap() {
			if err := h.NeighDel(&n); err == nil {
				changed++
			}
			continue
		}
		haveFDB[mac] = true
	}
	for _, p := range peers {
		mac, err := net.ParseMAC(p.MAC)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if have[p.IP] != p.MAC {
			n := &netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT, IP: p.IP.AsSlice(), HardwareAddr: mac}
			if err := h.NeighSet(n); err != nil {
				errs = append(errs, fmt.Errorf("ip -n %s neigh replace %s lladdr %s dev %s: %w", netnsName, p.IP, p.MAC, vxlan, err))
			} else {
				changed++
			}
		}
		if !haveFDB[p.MAC] {
			n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, IP: p.VTEP.AsSlice(), HardwareAddr: mac}
			if err := h.NeighSet(n); err != nil {
				errs = append(errs, fmt.Errorf("bridge -n %s fdb replace %s dev %s dst %s: %w", netnsName, p.MAC, vxlan, p.VTEP, err))
			} else {
				changed++
			}
		}
	}
	return changed, errors.Join(errs...)
}

// PeerCommands are SetPeers' entries as shell commands, for the views.
func PeerCommands(netnsName, vxlan string, p Peer) []string {
	return []string{
		"ip -n " + netnsName + " neigh replace " + p.IP.String() + " lladdr " + p.MAC + " dev " + vxlan + " nud permanent",
		"bridge -n " + netnsName + " fdb replace " + p.MAC + " dev " + vxlan + " dst " + p.VTEP.String() + " self permanent",
	}
}

// Peers reads the remote endpoints an overlay network's tunnel knows: its
// permanent neighbours, each with the VTEP its forwarding entry names
// (an invalid VTEP: no entry).
func Peers(netnsName, vxlan string) ([]Peer, error) {
	h, err := Open(netnsName)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	vx, err := h.LinkByName(vxlan)
	if err != nil {
		return nil, fmt.Errorf("overlay %s: %w", vxlan, err)
	}
	neighs, err := h.NeighList(vx.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	fdbs, err := h.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return nil, err
	}
	vteps := map[string]netip.Addr{}
	for _, f := range fdbs {
		if a, ok := netip.AddrFromSlice(f.IP); ok && f.LinkIndex == vx.Attrs().Index {
			vteps[f.HardwareAddr.String()] = a.Unmap()
		}
	}
	var out []Peer
	for _, n := range neighs {
		if n.State != netlink.NUD_PERMANENT {
			continue
		}
		a, _ := netip.AddrFromSlice(n.IP)
		mac := n.HardwareAddr.String()
		out = append(out, Peer{IP: a.Unmap(), MAC: mac, VTEP: vteps[mac]})
	}
	return out, nil
}

func linkKey(netns, name string) string { return "link:" + netns + "/" + name }

func (s *OverlayVeth) Makes() string { return linkKey(s.Sandbox, s.Peer) }
func (s *Veth) Makes() string        { return linkKey(s.Netns, s.Peer) }
func (s *LanLink) Makes() string     { return linkKey(s.Netns, s.Name) }
func (s *Addr) Uses() string         { return linkKey(s.Netns, s.Link) }
func (s *Up) Uses() string           { return linkKey(s.Netns, s.Link) }
func (s *IPv6On) Uses() string       { return linkKey(s.Netns, s.Link) }
