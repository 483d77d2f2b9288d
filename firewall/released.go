package firewall

import "github.com/minidocker-net/minidocker-net/plan"

func init() {
	// The name iptables' step was journaled under, kept for old journals.
	plan.Register("netns-dns-nat-release", func() plan.Step { return &DNSReleased{} })
}

// DNSReleased is what a whole sandbox's teardown does with the embedded
// DNS's rules inside its namespace, with either backend: nothing; they go
// with the namespace.
type DNSReleased struct {
	Netns string `json:"netns"`
}

func (s *DNSReleased) Kind() string { return "netns-dns-nat-release" }
func (s *DNSReleased) Commands() []string {
	return []string{"# the embedded DNS's rules go with namespace " + s.Netns}
}
func (s *DNSReleased) UndoCommands() []string    { return []string{"# nothing to undo"} }
func (s *DNSReleased) Apply(*plan.Context) error { return nil }
func (s *DNSReleased) Undo(*plan.Context) error  { return nil }
