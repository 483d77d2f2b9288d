package engine

import (
	"github.com/minidocker-net/minidocker-net/iptables"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

// Restore rebuilds in the kernel everything the records describe: after a
// reboot (networks survive it, sandboxes do not), an iptables flush or a
// firewall reload, or a deleted bridge or namespace. Every step first
// checks what is there, so what is intact is left as it is; a repair is
// not rolled back.
func (e *Engine) Restore() error {
	return e.converge("restore", func(t *tx) error { return t.restoreSteps() })
}

// restoreSteps plans the kernel objects and rules of every record; each
// step leaves what it finds intact in place.
func (t *tx) restoreSteps() error {
	{
		if len(t.new.Networks) == 0 {
			return nil
		}
		rs, err := t.ruleset()
		if err != nil {
			return err
		}
		// After a reboot the host record is gone with /run: note again
		// what the first network changes.
		if !t.new.Host.ForwardingEnabled && len(t.new.Host.TablesCreated) == 0 {
			for _, table := range iptables.Tables {
				if !rs.HasTable(table) {
					t.new.Host.TablesCreated = append(t.new.Host.TablesCreated, table)
				}
			}
		}
		step, err := sysctl.NewStep("net.ipv4.ip_forward", "1")
		if err != nil {
			return err
		}
		if step != nil {
			if !t.new.Host.ForwardingEnabled {
				t.new.Host.ForwardingEnabled = true
				t.new.Host.ForwardPolicyWas = rs.Policy("filter", "FORWARD")
			}
			t.setup = append(t.setup, step)
		}
		for _, name := range t.new.NetworkNames() {
			t.setup = append(t.setup, networkSteps(t.new.Networks[name])...)
		}
		for _, name := range t.new.SandboxNames() {
			steps, err := t.sandboxSteps(t.new, t.new.Sandboxes[name])
			if err != nil {
				return err
			}
			t.setup = append(t.setup, steps...)
		}
		policy := ""
		if t.new.Host.ForwardingEnabled {
			policy = "DROP"
		}
		if r := iptables.PlanRebuild(rs, DesiredRules(t.new), policy); r != nil {
			t.post = append(t.post, r)
		}
		return nil
	}
}

// converge runs a repair: steps are applied best-effort, without journal
// or rollback, then the (possibly updated) records are written.
func (e *Engine) converge(title string, build func(t *tx) error) error {
	return e.transact(title, build, true)
}
