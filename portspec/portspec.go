// Package portspec parses Docker's -p syntax:
//
//	[HOST_IP:][HOST_PORT[-END]]:CONTAINER_PORT[-END][/tcp|/udp]
//	CONTAINER_PORT[-END][/proto]   (random host port, or the same port for expose)
//
// An IPv6 HOST_IP is written in brackets, as Docker takes it: [::]:8080:80
// binds IPv6 only, 0.0.0.0:8080:80 IPv4 only, 8080:80 both.
package portspec

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Spec is one parsed mapping. HostPort 0 means "pick a free port".
type Spec struct {
	HostIP      netip.Addr // invalid: every address of both families
	HostPort    int
	HostPortEnd int
	Port        int
	PortEnd     int
	Proto       string
}

// Len is the number of ports in the container range.
func (s Spec) Len() int { return s.PortEnd - s.Port + 1 }

func (s Spec) String() string {
	var b strings.Builder
	if s.HostIP.Is6() {
		b.WriteString("[" + s.HostIP.String() + "]:")
	} else if s.HostIP.IsValid() {
		b.WriteString(s.HostIP.String() + ":")
	}
	if s.HostPort != 0 {
		b.WriteString(rng(s.HostPort, s.HostPortEnd))
	}
	if s.HostIP.IsValid() || s.HostPort != 0 {
		b.WriteString(":")
	}
	b.WriteString(rng(s.Port, s.PortEnd) + "/" + s.Proto)
	return b.String()
}

func rng(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

// Parse parses a -p value. A bare container port gets a random host port.
func Parse(s string) (Spec, error) { return parse(s, false) }

// ParseExpose parses an expose value: a bare port publishes the same number
// on the host, as the design card asks for "expose 45678".
func ParseExpose(s string) (Spec, error) { return parse(s, true) }

func parse(s string, sameWhenBare bool) (Spec, error) {
	bad := func(format string, a ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("invalid port spec %q: %s", s, fmt.Sprintf(format, a...))
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > 64 {
		return bad("too long")
	}
	body, host6, bracketed := s, "", false
	if rest, ok := strings.CutPrefix(s, "["); ok {
		a, after, ok := strings.Cut(rest, "]:")
		if !ok {
			return bad("an IPv6 host address is written [ADDR]:HOST_PORT:CONTAINER_PORT")
		}
		host6, body, bracketed = a, after, true
	}
	if strings.ContainsAny(body, "[]") || strings.Count(body, ":") > 2 || bracketed && strings.Count(body, ":") != 1 {
		return bad("an IPv6 host address is written in brackets: [ADDR]:HOST_PORT:CONTAINER_PORT")
	}
	spec := Spec{Proto: "tcp"}
	if i := strings.LastIndex(body, "/"); i >= 0 {
		body, spec.Proto = body[:i], body[i+1:]
		if spec.Proto != "tcp" && spec.Proto != "udp" {
			return bad("protocol must be tcp or udp")
		}
	}
	parts := strings.Split(body, ":")
	var hostIP, hostPorts, ctrPorts string
	switch len(parts) {
	case 1:
		ctrPorts = parts[0]
	case 2:
		hostPorts, ctrPorts = parts[0], parts[1]
		if hostPorts == "" && !bracketed {
			return bad("host port is empty")
		}
	case 3:
		hostIP, hostPorts, ctrPorts = parts[0], parts[1], parts[2]
	}
	var err error
	if spec.Port, spec.PortEnd, err = parseRange(ctrPorts); err != nil {
		return bad("container port: %v", err)
	}
	switch {
	case bracketed:
		a, err := netip.ParseAddr(host6)
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
			return bad("host address [%s] is not an IPv6 address (no zone, not IPv4-mapped)", host6)
		}
		spec.HostIP = a
	case hostIP != "":
		a, err := netip.ParseAddr(hostIP)
		if err != nil || !a.Is4() {
			return bad("host address %q is not an IPv4 address (an IPv6 one goes in brackets)", hostIP)
		}
		spec.HostIP = a
	}
	switch {
	case hostPorts != "":
		if spec.HostPort, spec.HostPortEnd, err = parseRange(hostPorts); err != nil {
			return bad("host port: %v", err)
		}
		n := spec.HostPortEnd - spec.HostPort + 1
		if n != spec.Len() && spec.Len() != 1 {
			return bad("host range %s and container range %s differ in length", rng(spec.HostPort, spec.HostPortEnd), rng(spec.Port, spec.PortEnd))
		}
	case len(parts) == 1 && sameWhenBare:
		spec.HostPort, spec.HostPortEnd = spec.Port, spec.PortEnd
	}
	return spec, nil
}

func parseRange(s string) (int, int, error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err := parsePort(a)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	hi, err := parsePort(b)
	if err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("range %s runs backwards", s)
	}
	return lo, hi, nil
}

func parsePort(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing port number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a port number", s)
		}
	}
	if len(s) > 5 {
		return 0, fmt.Errorf("port %s is outside 1-65535", s)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d is outside 1-65535", n)
	}
	return n, nil
}
