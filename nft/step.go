package nft

import (
	"fmt"
	"strings"

	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
)

func init() {
	plan.Register("nftables", func() plan.Step { return &Step{} })
}

// Step applies a command's whole change to one table as one netlink
// batch: one transaction, no process started.
type Step struct {
	Diff
}

func (s *Step) Kind() string { return "nftables" }

func (s *Step) Apply(*plan.Context) error {
	if s.Netns != "" && !nsnet.Exists(s.Netns) {
		return fmt.Errorf("nftables in namespace %s: it does not exist", s.Netns)
	}
	return s.Diff.Apply()
}

func (s *Step) Undo(*plan.Context) error {
	if s.Netns != "" && !nsnet.Exists(s.Netns) {
		return nil
	}
	return s.Diff.Inverse().Apply()
}

func (s *Step) Commands() []string { return script(&s.Diff) }

func (s *Step) UndoCommands() []string { return script(s.Diff.Inverse()) }

// script is the diff as one 'nft -f' run, atomic as the batch is.
func script(d *Diff) []string {
	lines := d.Script()
	cmd := "nft -f - <<'EOF'\n" + strings.Join(lines, "\n") + "\nEOF"
	if d.Netns != "" {
		cmd = "ip netns exec " + d.Netns + " " + cmd
	}
	return []string{cmd}
}
