package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

// Kernel is what the engine asks of the host while it builds a plan:
// facts, never changes (those are the plan's steps). Unit tests give the
// engine a fake one, so plans are built without root.
type Kernel interface {
	// Routes are the host's routes of both families other than default,
	// link-local and multicast routes.
	Routes() ([]netip.Prefix, error)
	LinkExists(name string) bool
	// LinkType is a host link's type (netlink's: "device", "veth",
	// "loopback"...); false when there is none.
	LinkType(name string) (string, bool)
	// SupportsLinkType says whether the kernel has a link type.
	SupportsLinkType(kind string) bool
	NetnsExists(name string) bool
	NetnsInode(name string) (uint64, error)
	// SysctlStep is the step that sets key to value, nil when it holds it.
	SysctlStep(key, value string) (*sysctl.Step, error)
	// ResolvConf is the host's resolver configuration and where it is.
	ResolvConf() ([]byte, string, error)
	Nameservers() []netip.Prefix
	Processes(sb *store.Sandbox) ([]nsnet.Process, error)
	// HostHolds says why a host program holds a port, nil when none does.
	HostHolds(ip netip.Addr, proto string, port int) error
	EphemeralRange() (int, int)
}

// hostKernel is the real host.
type hostKernel struct{}

func (hostKernel) Routes() ([]netip.Prefix, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() || r.Dst.IP.IsLinkLocalUnicast() || r.Dst.IP.IsMulticast() {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
			out = append(out, netip.PrefixFrom(a.Unmap(), ones).Masked())
		}
	}
	return out, nil
}

func (hostKernel) LinkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

func (hostKernel) LinkType(name string) (string, bool) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return "", false
	}
	if l.Attrs().Flags&net.FlagLoopback != 0 {
		return "loopback", true
	}
	return l.Type(), true
}

// SupportsLinkType asks the kernel to add a link of the type on a parent
// that does not exist: it refuses a type it lacks with EOPNOTSUPP and one
// it has for the parent (ENODEV), so nothing changes either way.
func (hostKernel) SupportsLinkType(kind string) bool {
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.ParentIndex = "mdnprobe0", 1<<30
	var l netlink.Link
	switch kind {
	case "macvlan":
		l = &netlink.Macvlan{LinkAttrs: attrs}
	case "ipvlan":
		l = &netlink.IPVlan{LinkAttrs: attrs}
	case "vlan":
		l = &netlink.Vlan{LinkAttrs: attrs, VlanId: 1}
	case "dummy":
		// No parent to miss: a name the kernel refuses (EINVAL) once it
		// knows the type.
		attrs.Name, attrs.ParentIndex = "mdn/probe", 0
		l = &netlink.Dummy{LinkAttrs: attrs}
	default:
		return false
	}
	err := netlink.LinkAdd(l)
	if err == nil {
		_ = netlink.LinkDel(l)
		return true
	}
	return !errors.Is(err, unix.EOPNOTSUPP)
}

func (hostKernel) NetnsExists(name string) bool                         { return nsnet.Exists(name) }
func (hostKernel) NetnsInode(name string) (uint64, error)               { return nsnet.Inode(name) }
func (hostKernel) Nameservers() []netip.Prefix                          { return etcfiles.HostNameservers() }
func (hostKernel) Processes(sb *store.Sandbox) ([]nsnet.Process, error) { return Processes(sb) }

func (hostKernel) SysctlStep(key, value string) (*sysctl.Step, error) {
	return sysctl.NewStep(key, value)
}

func (hostKernel) ResolvConf() ([]byte, string, error) {
	src := etcfiles.HostResolvConf()
	b, err := os.ReadFile(src)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, src, fmt.Errorf("read %s: %w", src, err)
	}
	return b, src, nil
}

// EphemeralRange is where ports come from when none is given, as Docker.
func (hostKernel) EphemeralRange() (int, int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && lo > 0 && hi >= lo {
				return lo, hi
			}
		}
	}
	return 49153, 65535
}

// HostHolds reports whether a process on the host holds the port: a bind
// is the only exact test (a listener elsewhere may be on any address).
func (hostKernel) HostHolds(ip netip.Addr, proto string, port int) error {
	host, fam := "0.0.0.0", "4"
	if ip.IsValid() {
		host = ip.String()
	}
	if ip.Is6() {
		fam = "6"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	var err error
	if proto == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp"+fam, addr); err == nil {
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp"+fam, addr); err == nil {
			l.Close()
		}
	}
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return errors.New("address already in use")
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return errors.New("cannot assign requested address: not an address of this host")
	}
	return err
}
