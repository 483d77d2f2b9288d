package engine

import (
	"strings"
	"testing"
)

func TestBridgeNames(t *testing.T) {
	id := "70c7c46e2c4a5b1d064752a2a1ed972b94cdf0de91e99e0b74de75b9c0f6ab29"
	none := func(string) bool { return false }
	for name, want := range map[string]string{
		"applesonly":    "mdn-applesonly",
		"test-network":  "mdn-test-n-70c7",
		"a.b_c":         "mdn-a-b-c",
		"abcdefghijklm": "mdn-abcdef-70c7",
	} {
		if got := bridgeNameFor(name, id, none); got != want || len(got) > 15 {
			t.Errorf("bridgeNameFor(%q) = %q, want %q", name, got, want)
		}
	}
	taken := map[string]bool{"mdn-test-n-70c7": true}
	if got := bridgeNameFor("test-network", id, func(b string) bool { return taken[b] }); got != "mdn-test-70c7c4" {
		t.Errorf("a taken name takes more of the ID: %q", got)
	}
}

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
	if err := ValidateBridgeName("docker1"); err == nil || !strings.Contains(err.Error(), `must start with "mdn"`) {
		t.Errorf("bridge names need our prefix: %v", err)
	}
	if err := ValidateBridgeName("mdn-0123456789ab"); err == nil {
		t.Errorf("16 characters is too long for an interface name")
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
	if n.Options[OptICC] != "false" || n.Options[OptMasquerade] != "false" || n.Options[OptMTU] != "1400" {
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
		{Name: "n", Driver: "macvlan"},
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
		if ValidateBridgeName(in) == nil && (len(in) > 15 || !strings.HasPrefix(in, "mdn") || strings.ContainsAny(in, "/ .:")) {
			t.Fatalf("ValidateBridgeName accepted %q", in)
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
		if n.Bridge != "" && ValidateBridgeName(n.Bridge) != nil {
			t.Fatalf("option %q gave bridge name %q", opt, n.Bridge)
		}
		for k := range n.Options {
			if _, known := optAliases[k]; !known {
				t.Fatalf("option %q stored an unknown key %q", opt, k)
			}
		}
	})
}

func TestNetworkNamesAsDocker(t *testing.T) {
	id := "70c7c46e2c4a5b1d064752a2a1ed972b94cdf0de91e99e0b74de75b9c0f6ab29"
	none := func(string) bool { return false }
	for name, bridge := range map[string]string{"_net": "mdn-net", "my net": "mdn-my-net", "réseau": "mdn-rseau", "日本": "mdn-70c7c46e2c4", "a;b": "mdn-ab"} {
		if err := ValidateNetworkName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
		if got := bridgeNameFor(name, id, none); got != bridge {
			t.Errorf("bridgeNameFor(%q) = %q, want %q", name, got, bridge)
		}
	}
	for _, bad := range []string{"", "a/b", "..", ".", "-j ACCEPT", " lead", "a\tb", "line\nbreak", strings.Repeat("n", 65), "\xff"} {
		if ValidateNetworkName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
