package engine

import (
	"strings"
	"testing"

	"github.com/minidocker-net/minidocker-net/driver"
)

func TestValidateNames(t *testing.T) {
	for _, ok := range []string{"apple-server", "a", "A_1.b", strings.Repeat("x", 64)} {
		if err := ValidateName("sandbox", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-j", "..", "../x", "a b", "a;b", "$(id)", "a/b", "é", strings.Repeat("x", 65), "a\nb"} {
		if err := ValidateName("sandbox", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNetworkOptions(t *testing.T) {
	n, err := buildNetwork(NetworkRequest{Name: "n", Options: []string{"icc=false", "com.docker.network.bridge.enable_ip_masquerade=0", "mtu=1400", "name=mdn-x"}, Labels: []string{"a=b=c"}})
	if err != nil {
		t.Fatal(err)
	}
	if n.ICC || n.Masquerade || n.MTU != 1400 || n.Bridge != "mdn-x" || n.Labels["a"] != "b=c" {
		t.Errorf("parsed %+v", n)
	}
	if n.Options[driver.OptICC] != "false" || n.Options[driver.OptMasquerade] != "false" || n.Options[driver.OptMTU] != "1400" {
		t.Errorf("options are kept under Docker's full names: %v", n.Options)
	}
	for _, bad := range []NetworkRequest{
		{Name: "n", Options: []string{"nokey"}},
		{Name: "n", Options: []string{"=v"}},
		{Name: "n", Options: []string{"icc=yes please"}},
		{Name: "n", Options: []string{"mtu=67"}},
		{Name: "n", Options: []string{"com.docker.network.bridge.host_binding_ipv4=1.2.3.4"}},
		{Name: "n", Labels: []string{"novalue"}},
		{Name: "none"},
		{Name: "n", Driver: "nosuch"},
		{Name: "n", Driver: "overlay", Options: []string{"encrypted=true"}},
		{Name: "n", Driver: "macvlan", Options: []string{"macvlan_mode=loud"}},
		{Name: "n", Driver: "ipvlan", Options: []string{"ipvlan_flag=none"}},
		{Name: "n", Driver: "macvlan", Options: []string{"ipvlan_mode=l2"}},
	} {
		if _, err := buildNetwork(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func FuzzNames(f *testing.F) {
	for _, s := range []string{"apple-server", "-j", "../x", "a b", "mdn-x", "$(id)", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if ValidateName("sandbox", in) == nil {
			if len(in) > MaxNameLen || strings.ContainsAny(in, "/ \t\n;&|$`'\"\\()<>*?!") || strings.HasPrefix(in, "-") || strings.HasPrefix(in, ".") {
				t.Fatalf("ValidateName accepted %q", in)
			}
		}
		if ValidateHostname(in) == nil && (len(in) > 64 || strings.ContainsAny(in, "/ _;$")) {
			t.Fatalf("ValidateHostname accepted %q", in)
		}
	})
}

func FuzzNetworkOptions(f *testing.F) {
	for _, s := range []string{"icc=false", "mtu=1400", "name=mdn-x", "com.docker.network.bridge.enable_ip_masquerade=1", "x", "=", "mtu=-1"} {
		f.Add(s, "k=v")
	}
	f.Fuzz(func(t *testing.T, opt, label string) {
		n, err := buildNetwork(NetworkRequest{Name: "n", Options: []string{opt}, Labels: []string{label}})
		if err != nil {
			return
		}
		if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
			t.Fatalf("option %q gave MTU %d", opt, n.MTU)
		}
		if n.Bridge != "" && driver.ValidateBridgeName(n.Bridge) != nil {
			t.Fatalf("option %q gave bridge name %q", opt, n.Bridge)
		}
		for k := range n.Options {
			if k != driver.OptBridgeName && k != driver.OptICC && k != driver.OptMasquerade && k != driver.OptMTU {
				t.Fatalf("option %q stored an unknown key %q", opt, k)
			}
		}
	})
}

func TestNetworkNamesAsDocker(t *testing.T) {
	for _, name := range []string{"_net", "my net", "réseau", "日本", "a;b"} {
		if err := ValidateNetworkName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, bad := range []string{"", "a/b", "..", ".", "-j ACCEPT", " lead", "a\tb", "line\nbreak", strings.Repeat("n", 65), "\xff"} {
		if ValidateNetworkName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
