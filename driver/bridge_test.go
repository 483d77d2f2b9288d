package driver

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

func TestValidateBridgeName(t *testing.T) {
	if err := ValidateBridgeName("docker1"); err == nil || !strings.Contains(err.Error(), `must start with "mdn"`) {
		t.Errorf("bridge names need our prefix: %v", err)
	}
	if err := ValidateBridgeName("mdn-0123456789ab"); err == nil {
		t.Errorf("16 characters is too long for an interface name")
	}
}

// Bridge names of the names Docker accepts: only [a-zA-Z0-9-] reaches them.
func TestBridgeNamesOfFreeNetworkNames(t *testing.T) {
	id := "70c7c46e2c4a5b1d064752a2a1ed972b94cdf0de91e99e0b74de75b9c0f6ab29"
	none := func(string) bool { return false }
	for name, bridge := range map[string]string{"_net": "mdn-net", "my net": "mdn-my-net", "réseau": "mdn-rseau", "日本": "mdn-70c7c46e2c4", "a;b": "mdn-ab"} {
		if got := bridgeNameFor(name, id, none); got != bridge {
			t.Errorf("bridgeNameFor(%q) = %q, want %q", name, got, bridge)
		}
	}
}

func FuzzBridgeNames(f *testing.F) {
	for _, s := range []string{"mdn-x", "-j", "a b", "mdn.x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if ValidateBridgeName(in) == nil && (len(in) > 15 || !strings.HasPrefix(in, "mdn") || strings.ContainsAny(in, "/ .:")) {
			t.Fatalf("ValidateBridgeName accepted %q", in)
		}
		id := "70c7c46e2c4a5b1d064752a2a1ed972b94cdf0de91e99e0b74de75b9c0f6ab29"
		if b := bridgeNameFor(in, id, func(string) bool { return false }); ValidateBridgeName(b) != nil {
			t.Fatalf("bridgeNameFor(%q) = %q, not a valid bridge name", in, b)
		}
	})
}
