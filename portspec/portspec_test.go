package portspec

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"45678:45678":           "45678:45678/tcp",
		"8080:80/udp":           "8080:80/udp",
		"127.0.0.1:8080:80":     "127.0.0.1:8080:80/tcp",
		"127.0.0.1::80":         "127.0.0.1::80/tcp",
		"0.0.0.0:8080:80":       "0.0.0.0:8080:80/tcp",
		"[::]:8080:80":          "[::]:8080:80/tcp",
		"[::1]:80:80":           "[::1]:80:80/tcp",
		"[2001:db8::1]::80/udp": "[2001:db8::1]::80/udp",
		"80":                    "80/tcp",
		"8000-8010:9000-9010":   "8000-8010:9000-9010/tcp",
		"8000-8010:80":          "8000-8010:80/tcp",
		"1:65535/udp":           "1:65535/udp",
	} {
		s, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if s.String() != want {
			t.Errorf("Parse(%q) = %s, want %s", in, s, want)
		}
	}
	if s, _ := ParseExpose("45678"); s.HostPort != 45678 || s.Port != 45678 {
		t.Errorf("expose 45678 publishes the same port: %+v", s)
	}
	if s, _ := Parse("45678"); s.HostPort != 0 {
		t.Errorf("-p 45678 picks a random host port: %+v", s)
	}
}

func TestParseRejects(t *testing.T) {
	for in, want := range map[string]string{
		"0:80":                   "port 0 is outside 1-65535",
		"70000:80":               "port 70000 is outside 1-65535",
		"80:999999":              "outside 1-65535",
		"abc":                    "is not a port number",
		"80/sctp":                "protocol must be tcp or udp",
		"[::1]:80":               "in brackets",
		"[::1:80:80":             "[ADDR]:HOST_PORT",
		"[fe80::1%eth0]:80:80":   "no zone",
		"[::ffff:1.2.3.4]:80:80": "IPv4-mapped",
		"[1.2.3.4]:80:80":        "not an IPv6 address",
		"::1:80:80":              "IPv6",
		"fd00::1:80:80":          "IPv6",
		"1.2.3:80:80":            "not an IPv4 address",
		"8000-8010:80-85":        "differ in length",
		"90-80:80":               "runs backwards",
		":80":                    "host port is empty",
		"":                       "empty",
		"-1:80":                  "missing port number",
		"80;rm -rf /":            "protocol must be tcp or udp",
		"80;reboot":              "is not a port number",
		"80:80/tcp/udp":          "is not a port number",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want error with %q", in, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"80", "8080:80/udp", "127.0.0.1:1-2:3-4/tcp", "::", "a:b:c:d", "65535-1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		if s.Port < 1 || s.PortEnd > 65535 || s.PortEnd < s.Port || s.Proto != "tcp" && s.Proto != "udp" {
			t.Fatalf("Parse(%q) accepted an invalid spec %+v", in, s)
		}
		if s.HostPort != 0 && (s.HostPort < 1 || s.HostPortEnd > 65535 || s.HostPortEnd < s.HostPort) {
			t.Fatalf("Parse(%q) accepted invalid host ports %+v", in, s)
		}
		if s.HostIP.IsValid() && !s.HostIP.Is4() {
			t.Fatalf("Parse(%q) accepted a non-IPv4 host address", in)
		}
		again, err := Parse(s.String())
		if err != nil || again != s {
			t.Fatalf("Parse(%q) = %+v does not round-trip through %q: %+v %v", in, s, s.String(), again, err)
		}
	})
}
