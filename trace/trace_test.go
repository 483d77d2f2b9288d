package trace

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]Target{
		"apple-server":        {Name: "apple-server", Proto: "icmp"},
		"host:45678":          {Name: "host", Port: 45678, Proto: "tcp"},
		"10.0.0.2:53/udp":     {Name: "10.0.0.2", Port: 53, Proto: "udp"},
		"orange-server:1/tcp": {Name: "orange-server", Port: 1, Proto: "tcp"},
	} {
		got, err := ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x:0", "x:70000", "x:abc", "x/udp", "x:1/sctp", ":80"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"a", "host:1", "1.2.3.4:5/udp", "x:99999", "::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseTarget(in)
		if err != nil {
			return
		}
		if got.Name == "" || got.Port < 0 || got.Port > 65535 || (got.Proto != "icmp") == (got.Port == 0) || strings.ContainsAny(got.Proto, " ;") {
			t.Fatalf("ParseTarget(%q) = %+v", in, got)
		}
	})
}

func TestHostsLookup(t *testing.T) {
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost\n172.19.0.1\thost.docker.internal\n# comment 1.2.3.4 x\n172.19.0.2\tapple-server bee\n172.19.0.9\tbee\n"
	for name, want := range map[string]string{"apple-server": "172.19.0.2", "BEE": "172.19.0.2", "host.docker.internal": "172.19.0.1", "x": "", "localhost": "127.0.0.1"} {
		a, ok := hostsLookup(hosts, name, false)
		if got := a.String(); !ok && want != "" || ok && got != want {
			t.Errorf("hostsLookup(%q) = %v %v, want %q", name, a, ok, want)
		}
	}
	hosts += "2001:db8::2\tapple-server\n"
	for name, want := range map[string]string{"apple-server": "2001:db8::2", "localhost": "::1", "host.docker.internal": ""} {
		a, ok := hostsLookup(hosts, name, true)
		if got := a.String(); !ok && want != "" || ok && got != want {
			t.Errorf("hostsLookup(%q, IPv6) = %v %v, want %q", name, a, ok, want)
		}
	}
}

func TestParseTargetIPv6(t *testing.T) {
	for in, want := range map[string]Target{
		"2001:db8::2":          {Name: "2001:db8::2", Proto: "icmp", IPv6: true},
		"[2001:db8::2]:80":     {Name: "2001:db8::2", Port: 80, Proto: "tcp", IPv6: true},
		"[2001:db8::2]:53/udp": {Name: "2001:db8::2", Port: 53, Proto: "udp", IPv6: true},
		"apple-server:80":      {Name: "apple-server", Port: 80, Proto: "tcp"},
		"172.18.0.2:8080/udp":  {Name: "172.18.0.2", Port: 8080, Proto: "udp"},
	} {
		if got, err := ParseTarget(in); err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %+v %v, want %+v", in, got, err, want)
		}
	}
}
