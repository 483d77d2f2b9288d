package firewall

import (
	"fmt"
	"io"
	"net/netip"

	"github.com/minidocker-net/minidocker-net/plan"
)

// Stub is a Backend that programs nothing: it remembers every change it
// was asked for and plans one step that says what it would do. Engine
// tests plan against it without root.
type Stub struct {
	Changes [][2]Intent // every Change call: from, to
}

var _ Backend = (*Stub)(nil)

// StubStep is the step the stub plans: the intent it would reach, or
// the embedded DNS's wiring in a namespace.
type StubStep struct {
	Networks, Ports int
	DNS             string
}

func (s *StubStep) Kind() string              { return "firewall-stub" }
func (s *StubStep) Apply(*plan.Context) error { return nil }
func (s *StubStep) Undo(*plan.Context) error  { return nil }
func (s *StubStep) Commands() []string {
	if s.DNS != "" {
		return []string{"# firewall: the embedded DNS's rules in " + s.DNS}
	}
	return []string{fmt.Sprintf("# firewall: %d networks, %d published ports", s.Networks, s.Ports)}
}
func (s *StubStep) UndoCommands() []string { return []string{"# firewall: back"} }

func (b *Stub) Name() string { return "stub" }
func (b *Stub) Setup() ([]plan.Step, []string, string, error) {
	return nil, nil, "ACCEPT", nil
}
func (b *Stub) Teardown([]string) []plan.Step { return nil }
func (b *Stub) Change(from, to Intent) ([]plan.Step, error) {
	b.Changes = append(b.Changes, [2]Intent{from, to})
	return []plan.Step{&StubStep{Networks: len(to.Networks), Ports: len(to.Ports)}}, nil
}
func (b *Stub) Rebuild(Intent) (plan.Step, error)                  { return nil, nil }
func (b *Stub) Remove(string, []string, bool) ([]plan.Step, error) { return nil, nil }
func (b *Stub) Check(Intent) ([]Finding, error)                    { return nil, nil }
func (b *Stub) List(io.Writer, Intent, []string) error             { return nil }
func (b *Stub) Tables() []string                                   { return nil }
func (b *Stub) Walk(Intent, Hook, Packet) (Verdict, error) {
	return Verdict{Target: "ACCEPT", Policy: true}, nil
}
func (b *Stub) DNATTarget(string, int) (netip.Addr, int, error) { return netip.Addr{}, 0, nil }
func (b *Stub) Prestart(*plan.Context, []plan.Step)             {}
func (b *Stub) Keep(*plan.Context, bool)                        {}
func (b *Stub) ForwardPolicy() (string, error)                  { return "ACCEPT", nil }
func (b *Stub) Resolver(netns string, ip netip.Addr, port int) plan.Step {
	return &StubStep{DNS: netns}
}
