package e2e

import (
	"strings"
	"testing"
)

// TestDemo runs the guided demo (on the test's throwaway host) and checks
// that every lesson passed and the host was left as it was.
func TestDemo(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	before := h.Snapshot()
	r := h.MDN("demo", "--on-host")
	if r.Code != 0 {
		t.Fatalf("demo failed:\n%s", r)
	}
	for _, want := range []string{"terminal 2 printed: hello through the kernel", "reader printed: hello from a sandbox", "0 failed.", "drops it", "nslookup orange-server is answered by 127.0.0.11, as on Docker"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(r.Stdout, "✗") {
		t.Errorf("a lesson failed:\n%s", r.Stdout)
	}
	h.SameAs(before, "after the demo")
}

// TestDemoMultiHost runs the overlay lesson (three throwaway hosts inside
// one, etcd on their LAN) and checks that every lesson passed and the
// host was left as it was.
func TestDemoMultiHost(t *testing.T) {
	t.Parallel()
	h := NewHost(t)
	before := h.Snapshot()
	r := h.MDN("demo", "--multi-host")
	if r.Code != 0 || !strings.Contains(r.Stdout, "8 checks passed, 0 failed.") {
		t.Fatalf("demo --multi-host failed:\n%s", r)
	}
	for _, want := range []string{"red-apple (host3) reaches apple-server (host1) by name", "the frame is wrapped in VXLAN (VNI 257) in UDP to 192.168.77.11:4789", "dst 192.168.77.12"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	h.SameAs(before, "after the multi-host demo")
}
