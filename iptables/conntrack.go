package iptables

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/plan"
)

func init() { plan.Register("conntrack-flush", func() plan.Step { return &FlushConntrack{} }) }

// FlushConntrack deletes conntrack entries for datagrams sent to a host
// port range. A UDP "connection" lives on as long as datagrams keep coming,
// so without the flush a client would keep reaching the port's previous
// owner (or nothing) after the mapping changed. There is nothing to undo.
type FlushConntrack struct {
	Proto   string `json:"proto"`
	Port    int    `json:"port"`
	PortEnd int    `json:"port_end"`
}

func (s *FlushConntrack) Kind() string { return "conntrack-flush" }

func (s *FlushConntrack) Commands() []string {
	// conntrack fails when no entry matches, which is no failure here.
	if s.Port == s.PortEnd {
		return []string{fmt.Sprintf("conntrack -D -p %s --orig-port-dst %d 2>/dev/null || true", s.Proto, s.Port)}
	}
	return []string{fmt.Sprintf("for p in $(seq %d %d); do conntrack -D -p %s --orig-port-dst $p 2>/dev/null || true; done", s.Port, s.PortEnd, s.Proto)}
}

func (s *FlushConntrack) UndoCommands() []string   { return []string{"# nothing to undo"} }
func (s *FlushConntrack) Undo(*plan.Context) error { return nil }

type portFilter struct {
	proto    uint8
	from, to uint16
}

func (f portFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	return flow.Forward.Protocol == f.proto && flow.Forward.DstPort >= f.from && flow.Forward.DstPort <= f.to
}

func (s *FlushConntrack) Apply(*plan.Context) error {
	proto := uint8(unix.IPPROTO_UDP)
	if s.Proto == "tcp" {
		proto = unix.IPPROTO_TCP
	}
	f := portFilter{proto: proto, from: uint16(s.Port), to: uint16(s.PortEnd)}
	if _, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
		return fmt.Errorf("%s: %w", s.Commands()[0], err)
	}
	return nil
}
