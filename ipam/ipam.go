// Package ipam picks subnets and addresses the way Docker's default IPAM
// does, so the same sequence of commands yields the same addresses.
package ipam

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// DefaultSubnet belongs to the pre-defined network "bridge".
var DefaultSubnet = netip.MustParsePrefix("172.17.0.0/16")

// userPools are Docker's predefined pools after 172.17.0.0/16, each split
// into blocks of the given size: 172.18-31 as /16s, then 192.168/16 as /20s.
var userPools = []struct {
	base netip.Prefix
	size int
}{
	{netip.MustParsePrefix("172.18.0.0/16"), 16},
	{netip.MustParsePrefix("172.19.0.0/16"), 16},
	{netip.MustParsePrefix("172.20.0.0/14"), 16},
	{netip.MustParsePrefix("172.24.0.0/14"), 16},
	{netip.MustParsePrefix("172.28.0.0/14"), 16},
	{netip.MustParsePrefix("192.168.0.0/16"), 20},
}

// ErrPoolsExhausted is Docker 28's message when no predefined block is free.
var ErrPoolsExhausted = errors.New("all predefined address pools have been fully subnetted")

// ErrOverlap is Docker's message for an explicit subnet that overlaps a network.
var ErrOverlap = errors.New("invalid pool request: Pool overlaps with other one on this address space")

func overlapsAny(p netip.Prefix, list []netip.Prefix) bool {
	for _, q := range list {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

// candidates lists the predefined blocks in Docker's order.
func candidates(withDefault bool) []netip.Prefix {
	var out []netip.Prefix
	if withDefault {
		out = append(out, DefaultSubnet)
	}
	for _, p := range userPools {
		step := uint32(1) << (32 - p.size)
		first := p.base.Addr().As4()
		start := uint32(first[0])<<24 | uint32(first[1])<<16 | uint32(first[2])<<8 | uint32(first[3])
		count := uint32(1) << (p.size - p.base.Bits())
		for i := uint32(0); i < count; i++ {
			out = append(out, netip.PrefixFrom(addr4(start+i*step), p.size))
		}
	}
	return out
}

// PickSubnet returns the first predefined block that overlaps neither a
// network in use nor a prefix reserved by the host (its routes). The default
// network may take 172.17.0.0/16; user networks start at 172.18.0.0/16.
func PickSubnet(used, reserved []netip.Prefix, forDefault bool) (netip.Prefix, error) {
	for _, c := range candidates(forDefault) {
		if !overlapsAny(c, used) && !overlapsAny(c, reserved) {
			return c, nil
		}
	}
	return netip.Prefix{}, ErrPoolsExhausted
}

// ParseSubnet checks a --subnet value the way Docker does.
func ParseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return p, fmt.Errorf("invalid subnet %q: not an IPv4 CIDR such as 172.30.0.0/16", s)
	}
	if !p.Addr().Is4() {
		return p, fmt.Errorf("invalid subnet %s: not an IPv4 prefix", s)
	}
	if p.Masked() != p {
		return p, fmt.Errorf("invalid network config: invalid subnet %s: it should be %s", p, p.Masked())
	}
	if p.Bits() > 30 {
		return p, fmt.Errorf("invalid subnet %s: too small, a network needs at least a /30 (gateway and one sandbox)", p)
	}
	if p.Bits() < 8 {
		return p, fmt.Errorf("invalid subnet %s: larger than a /8 is not supported", p)
	}
	return p, nil
}

// ParseSubnet6 checks an IPv6 --subnet or --ip-range value: a global,
// unique-local or documentation prefix with room for sandboxes; never a
// zone, an IPv4-mapped address, loopback, link-local or multicast, and
// nothing as wide as ::/0.
func ParseSubnet6(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return p, fmt.Errorf("invalid subnet %q: not an IPv6 CIDR such as fd00:db8::/64", s)
	}
	a := p.Addr()
	switch {
	case !a.Is6():
		return p, fmt.Errorf("invalid subnet %s: not an IPv6 prefix", s)
	case a.Is4In6():
		return p, fmt.Errorf("invalid subnet %s: an IPv4-mapped prefix; give the IPv4 subnet as such", s)
	case p.Masked() != p:
		return p, fmt.Errorf("invalid network config: invalid subnet %s: it should be %s", p, p.Masked())
	case p.Bits() < 8:
		return p, fmt.Errorf("invalid subnet %s: larger than a /8 is not supported", p)
	case a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || p.Overlaps(linkLocal6) || p.Overlaps(multicast6):
		return p, fmt.Errorf("invalid subnet %s: loopback, link-local and multicast prefixes cannot be a network's", p)
	case p.Bits() > 126:
		return p, fmt.Errorf("invalid subnet %s: too small, a network needs at least a /126 (gateway and one sandbox)", p)
	}
	return p, nil
}

var (
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
	multicast6 = netip.MustParsePrefix("ff00::/8")
)

// ParseAddr6 parses an IPv6 address given on the command line (no zone,
// not IPv4-mapped).
func ParseAddr6(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("invalid %s %q: not an IPv6 address", what, s)
	}
	return a, nil
}

// IsIPv6 says whether a --subnet, --ip-range or --gateway value is
// written as IPv6 (it has a colon), to sort values of both families.
func IsIPv6(s string) bool { return strings.Contains(s, ":") }

// ULA is the unique local /48 (RFC 4193) a host's IPv6 networks come
// from when no --subnet is given: fd, then the low 40 bits of the first
// 8 bytes of sha256(engine ID) as a big-endian number, as Docker 27+
// derives its own from /var/lib/docker/engine-id.
func ULA(engineID string) netip.Prefix {
	sum := sha256.Sum256([]byte(engineID))
	g := binary.BigEndian.Uint64(sum[:8]) & (1<<40 - 1)
	var b [16]byte
	b[0] = 0xfd
	for i := 0; i < 5; i++ {
		b[1+i] = byte(g >> (8 * (4 - i)))
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), 48)
}

// PickSubnet6 returns the first /64 of the ULA /48 that overlaps neither
// a network in use nor a prefix reserved by the host.
func PickSubnet6(ula netip.Prefix, used, reserved []netip.Prefix) (netip.Prefix, error) {
	b := ula.Addr().As16()
	for i := 0; i < 1<<16; i++ {
		b[6], b[7] = byte(i>>8), byte(i)
		c := netip.PrefixFrom(netip.AddrFrom16(b), 64)
		if !overlapsAny(c, used) && !overlapsAny(c, reserved) {
			return c, nil
		}
	}
	return netip.Prefix{}, errors.New("ipv6 pool is empty")
}

// ParseAddr parses an IPv4 address given on the command line.
func ParseAddr(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("invalid %s %q: not an IPv4 address", what, s)
	}
	return a, nil
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Broadcast returns the last address of a prefix (IPv4's broadcast
// address; for IPv6 just the last one).
func Broadcast(p netip.Prefix) netip.Addr {
	if p.Addr().Is6() {
		b := p.Masked().Addr().As16()
		for i := p.Bits(); i < 128; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom16(b)
	}
	return addr4(u32(p.Addr()) | (1<<(32-p.Bits()) - 1))
}

// FirstHost returns the first address after the network address.
func FirstHost(p netip.Prefix) netip.Addr { return p.Addr().Next() }

// Pool is the address space of one network.
type Pool struct {
	Subnet  netip.Prefix
	Range   netip.Prefix // where sandbox addresses come from; the subnet if unset
	Gateway netip.Addr
}

func (p Pool) rng() netip.Prefix {
	if p.Range.IsValid() {
		return p.Range
	}
	return p.Subnet
}

// reserved: the network and broadcast addresses for IPv4, only the
// subnet-router anycast address (the subnet's first) for IPv6, as
// Docker's IPAM; and the gateway.
func (p Pool) reserved(a netip.Addr) bool {
	if a.Is6() {
		return a == p.Subnet.Addr() || a == p.Gateway
	}
	return a == p.Subnet.Addr() || a == Broadcast(p.Subnet) || a == p.Gateway
}

// Next returns the lowest free address, as Docker does: released addresses
// are handed out again at once.
func (p Pool) Next(used map[netip.Addr]bool) (netip.Addr, error) {
	r := p.rng()
	last := Broadcast(r)
	for a := r.Addr(); ; a = a.Next() {
		if !p.reserved(a) && !used[a] {
			return a, nil
		}
		if a == last {
			return netip.Addr{}, errors.New("no available addresses on this pool")
		}
	}
}

// Check validates an address asked for with --ip.
func (p Pool) Check(a netip.Addr, used map[netip.Addr]bool) error {
	if !p.rng().Contains(a) || p.reserved(a) && a != p.Gateway {
		return fmt.Errorf("no configured subnet or ip-range contain the IP address %s", a)
	}
	if a == p.Gateway || used[a] {
		return fmt.Errorf("Address already in use: %s", a)
	}
	return nil
}

// NewPool validates a network's address options and fills in the gateway.
func NewPool(subnet, ipRange netip.Prefix, gateway netip.Addr) (Pool, error) {
	p := Pool{Subnet: subnet, Range: ipRange, Gateway: gateway}
	if ipRange.IsValid() {
		if ipRange.Addr().Is4() != subnet.Addr().Is4() || ipRange.Masked() != ipRange || !subnet.Contains(ipRange.Addr()) || ipRange.Bits() < subnet.Bits() {
			return p, fmt.Errorf("invalid ip-range %s: it must be a CIDR inside the subnet %s", ipRange, subnet)
		}
	}
	if !gateway.IsValid() {
		// Docker draws the gateway from the range when there is one: its
		// first address that is neither the subnet's network nor its
		// broadcast address (--ip-range 172.30.5.0/24 gives 172.30.5.0).
		p.Gateway = FirstHost(subnet)
		if ipRange.IsValid() {
			p.Gateway = ipRange.Addr()
			if p.Gateway == subnet.Addr() {
				p.Gateway = p.Gateway.Next()
			}
		}
		return p, nil
	}
	if !subnet.Contains(gateway) {
		return p, fmt.Errorf("no matching subnet for gateway %s", gateway)
	}
	if gateway == subnet.Addr() || gateway.Is4() && gateway == Broadcast(subnet) {
		return p, fmt.Errorf("invalid gateway %s: the network or broadcast address of %s", gateway, subnet)
	}
	return p, nil
}
