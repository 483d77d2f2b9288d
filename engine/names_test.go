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
