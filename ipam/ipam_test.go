package ipam

import (
	"crypto/sha256"
	"math/big"
	"net/netip"
	"strings"
	"testing"
)

func TestPickSubnetFollowsDockerOrder(t *testing.T) {
	var used []netip.Prefix
	var got []string
	for i := 0; i < 16; i++ {
		p, err := PickSubnet(used, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		used = append(used, p)
		got = append(got, p.String())
	}
	want := "172.18.0.0/16 172.19.0.0/16 172.20.0.0/16 172.21.0.0/16 172.22.0.0/16 172.23.0.0/16 172.24.0.0/16 172.25.0.0/16 " +
		"172.26.0.0/16 172.27.0.0/16 172.28.0.0/16 172.29.0.0/16 172.30.0.0/16 172.31.0.0/16 192.168.0.0/20 192.168.16.0/20"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	d, _ := PickSubnet(nil, nil, true)
	if d != DefaultSubnet {
		t.Errorf("the default network takes %s, got %s", DefaultSubnet, d)
	}
}

func TestPickSubnetSkipsRoutesAndReuses(t *testing.T) {
	used := []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("172.20.0.0/16")}
	reserved := []netip.Prefix{netip.MustParsePrefix("172.19.5.0/24")} // a partial overlap disqualifies the /16
	p, _ := PickSubnet(used, reserved, false)
	if p.String() != "172.21.0.0/16" {
		t.Errorf("got %s", p)
	}
	// With the default subnet routed (Docker's docker0), the default network moves on.
	p, _ = PickSubnet(nil, []netip.Prefix{DefaultSubnet}, true)
	if p.String() != "172.18.0.0/16" {
		t.Errorf("default network beside docker0: %s", p)
	}
	var all []netip.Prefix
	for _, c := range candidates(true) {
		all = append(all, c)
	}
	if _, err := PickSubnet(all, nil, false); err != ErrPoolsExhausted {
		t.Errorf("exhausted pools: %v", err)
	}
}

func TestParseSubnet(t *testing.T) {
	for in, want := range map[string]string{
		"172.20.0.0/16": "",
		"172.20.0.1/16": "it should be 172.20.0.0/16",
		"10.0.0.0/31":   "too small",
		"0.0.0.0/0":     "larger than a /8",
		"fd00::/64":     "not an IPv4 prefix",
		"10.0.0.0":      "not an IPv4 CIDR",
		"":              "not an IPv4 CIDR",
		"10.0.0.0/33":   "not an IPv4 CIDR",
	} {
		_, err := ParseSubnet(in)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("ParseSubnet(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestAddressesLowestFreeAndReuse(t *testing.T) {
	p, err := NewPool(netip.MustParsePrefix("10.0.0.0/29"), netip.Prefix{}, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Gateway.String() != "10.0.0.1" {
		t.Fatalf("gateway %s", p.Gateway)
	}
	used := map[netip.Addr]bool{}
	var got []string
	for {
		a, err := p.Next(used)
		if err != nil {
			if !strings.Contains(err.Error(), "no available addresses") {
				t.Fatal(err)
			}
			break
		}
		used[a] = true
		got = append(got, a.String())
	}
	if strings.Join(got, " ") != "10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6" {
		t.Errorf("allocation order %v (network, gateway and broadcast are reserved)", got)
	}
	delete(used, netip.MustParseAddr("10.0.0.3"))
	if a, _ := p.Next(used); a.String() != "10.0.0.3" {
		t.Errorf("a released address is reused first, got %s", a)
	}
}

func TestPoolRangeAndStaticAddresses(t *testing.T) {
	sub := netip.MustParsePrefix("172.30.0.0/16")
	p, err := NewPool(sub, netip.MustParsePrefix("172.30.5.0/24"), netip.MustParseAddr("172.30.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Next(map[netip.Addr]bool{})
	if a.String() != "172.30.5.0" {
		t.Errorf("first address of the range: %s", a)
	}
	used := map[netip.Addr]bool{netip.MustParseAddr("172.30.5.9"): true}
	for ip, want := range map[string]string{
		"172.30.5.10":    "",
		"172.30.5.9":     "Address already in use",
		"172.30.0.1":     "no configured subnet or ip-range contain", // the gateway, outside the range
		"172.30.9.1":     "no configured subnet or ip-range contain the IP address",
		"172.30.255.255": "no configured subnet or ip-range contain the IP address",
	} {
		err := p.Check(netip.MustParseAddr(ip), used)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("Check(%s) = %v, want %q", ip, err, want)
		}
	}
	if _, err := NewPool(sub, netip.Prefix{}, netip.MustParseAddr("10.0.0.1")); err == nil || !strings.Contains(err.Error(), "no matching subnet for gateway 10.0.0.1") {
		t.Errorf("gateway outside: %v", err)
	}
	if _, err := NewPool(sub, netip.MustParsePrefix("10.1.0.0/24"), netip.Addr{}); err == nil {
		t.Error("a range outside the subnet must fail")
	}
}

func FuzzParseSubnet(f *testing.F) {
	for _, s := range []string{"172.18.0.0/16", "10.0.0.1/8", "::/0", "1.2.3.4/33", "", "0.0.0.0/0", "192.168.0.0/30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParseSubnet(in)
		if err != nil {
			return
		}
		if !p.Addr().Is4() || p.Masked() != p || p.Bits() < 8 || p.Bits() > 30 {
			t.Fatalf("ParseSubnet(%q) accepted %s", in, p)
		}
		pool, err := NewPool(p, netip.Prefix{}, netip.Addr{})
		if err != nil {
			t.Fatalf("a valid subnet %s has no pool: %v", p, err)
		}
		a, err := pool.Next(map[netip.Addr]bool{})
		if err != nil || !p.Contains(a) || a == pool.Gateway || a == p.Addr() || a == Broadcast(p) {
			t.Fatalf("first address of %s: %s %v", p, a, err)
		}
	})
}

func TestGatewayFromTheRange(t *testing.T) {
	sub := netip.MustParsePrefix("172.30.0.0/16")
	for rng, want := range map[string]string{"172.30.5.0/24": "172.30.5.0", "172.30.0.0/24": "172.30.0.1"} {
		p, err := NewPool(sub, netip.MustParsePrefix(rng), netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Gateway.String() != want {
			t.Errorf("range %s: gateway %s, want %s", rng, p.Gateway, want)
		}
		first, _ := p.Next(map[netip.Addr]bool{})
		if first != p.Gateway.Next() {
			t.Errorf("range %s: first address %s", rng, first)
		}
	}
}

// TestULAAsDocker: fd00:: plus the low 40 bits of sha256(engine ID)'s
// first 8 bytes, shifted into the Global ID (Docker's
// deriveULABaseNetwork: ipbits.Add(fd00::, gid, 80)), computed here with
// big integers.
func TestULAAsDocker(t *testing.T) {
	for _, id := range []string{"6c6c3c1d-3d0b-4fd4-a3e0-6b1d0a3c2e55", "abc"} {
		sum := sha256.Sum256([]byte(id))
		gid := new(big.Int).SetBytes(sum[:8])
		gid.And(gid, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 40), big.NewInt(1)))
		base := new(big.Int).SetBytes(netip.MustParseAddr("fd00::").AsSlice())
		var b [16]byte
		new(big.Int).Add(base, gid.Lsh(gid, 80)).FillBytes(b[:])
		want := netip.PrefixFrom(netip.AddrFrom16(b), 48)
		if got := ULA(id); got != want {
			t.Errorf("ULA(%q) = %s, want %s", id, got, want)
		}
	}
}

func TestIPv6Pools(t *testing.T) {
	ula := netip.MustParsePrefix("fd12:3456:789a::/48")
	used := []netip.Prefix{netip.MustParsePrefix("fd12:3456:789a::/64")}
	reserved := []netip.Prefix{netip.MustParsePrefix("fd12:3456:789a:1::/64"), netip.MustParsePrefix("10.0.0.0/8")}
	if p, err := PickSubnet6(ula, used, reserved); err != nil || p.String() != "fd12:3456:789a:2::/64" {
		t.Errorf("PickSubnet6: %s %v", p, err)
	}
	// The gateway ::1, the first sandbox ::2; only the subnet-router
	// address is reserved (no broadcast): the last address is handed out.
	p, err := NewPool(netip.MustParsePrefix("2001:db8::/126"), netip.Prefix{}, netip.Addr{})
	if err != nil || p.Gateway.String() != "2001:db8::1" {
		t.Fatalf("pool: %+v %v", p, err)
	}
	used6 := map[netip.Addr]bool{}
	var got []string
	for i := 0; i < 2; i++ {
		a, err := p.Next(used6)
		if err != nil {
			t.Fatal(err)
		}
		used6[a] = true
		got = append(got, a.String())
	}
	if strings.Join(got, " ") != "2001:db8::2 2001:db8::3" {
		t.Errorf("addresses: %v", got)
	}
	if a, err := p.Next(used6); err == nil {
		t.Errorf("a /126 holds two sandboxes, a third got %s", a)
	}
	if Broadcast(netip.MustParsePrefix("2001:db8::/64")).String() != "2001:db8::ffff:ffff:ffff:ffff" {
		t.Errorf("last address of a /64: %s", Broadcast(netip.MustParsePrefix("2001:db8::/64")))
	}
	if err := p.Check(netip.MustParseAddr("2001:db8::"), nil); err == nil {
		t.Error("the subnet-router address was handed out")
	}
}

func TestParseSubnet6(t *testing.T) {
	if p, err := ParseSubnet6(" 2001:db8:5::/64 "); err != nil || p.String() != "2001:db8:5::/64" {
		t.Errorf("a good prefix: %s %v", p, err)
	}
	for in, want := range map[string]string{
		"2001:db8::%eth0/64":  "not an IPv6 CIDR",
		"::ffff:10.0.0.0/104": "IPv4-mapped",
		"10.0.0.0/8":          "not an IPv6 prefix",
		"::/0":                "larger than a /8",
		"fe80::/64":           "link-local",
		"ff02::/16":           "multicast",
		"::1/128":             "loopback",
		"fc00::/7":            "larger than a /8",
		"2001:db8::1/64":      "it should be 2001:db8::/64",
		"2001:db8::/127":      "too small",
	} {
		if _, err := ParseSubnet6(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSubnet6(%q): %v, want %q", in, err, want)
		}
	}
}
