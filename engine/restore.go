package engine

import (
	"github.com/minidocker-net/minidocker-net/model"
)

// Restore rebuilds in the kernel everything the records describe: after a
// reboot (networks survive it, sandboxes do not), a firewall flush or
// reload, or a deleted bridge or namespace. Steps that find their object
// in place are left out, so what is intact is left as it is; a repair is
// not rolled back.
func (e *Engine) Restore() error {
	return e.converge("restore", func(t *tx) error { return t.restoreSteps() })
}

// restoreSteps plans the kernel objects and rules of every record.
func (t *tx) restoreSteps() error {
	// After a reboot the default network may have no sandbox left.
	if err := t.settleDefault(); err != nil {
		return err
	}
	if len(t.new.Networks) == 0 {
		return nil
	}
	if model.Bridged(t.new) {
		if err := t.restoreHost(); err != nil {
			return err
		}
	}
	if model.HasIPv6(t.new) {
		if err := t.restoreHost6(); err != nil {
			return err
		}
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
	r, err := t.fw.Rebuild(model.Intent(t.new))
	if err != nil {
		return err
	}
	if r != nil {
		t.post = append(t.post, r)
	}
	if model.HasIPv6(t.new) {
		r6, err := t.fw6.Rebuild(model.Intent6(t.new))
		if err != nil {
			return err
		}
		if r6 != nil {
			t.post = append(t.post, r6)
		}
	}
	return nil
}

// restoreHost is the host as restore finds it for bridge networks: after
// a reboot the host record is gone with /run, so what the first network
// changes is noted again; forwarding on.
func (t *tx) restoreHost() error {
	if !t.new.Host.ForwardingEnabled && len(t.new.Host.TablesCreated) == 0 {
		_, created, _, err := t.fw.Setup()
		if err != nil {
			return err
		}
		t.new.Host.TablesCreated = created
	}
	step, err := t.e.kernel.SysctlStep("net.ipv4.ip_forward", "1")
	if err != nil {
		return err
	}
	if step != nil {
		if !t.new.Host.ForwardingEnabled {
			policy, err := t.fw.ForwardPolicy()
			if err != nil {
				return err
			}
			t.new.Host.ForwardingEnabled = true
			t.new.Host.ForwardPolicyWas = policy
		}
		t.setup = append(t.setup, step)
	}
	return nil
}

// restoreHost6 is IPv6's part of the host as restore finds it: its
// tables noted again after a reboot, forwarding on.
func (t *tx) restoreHost6() error {
	if !t.new.Host.Forwarding6Enabled && len(t.new.Host.Tables6Created) == 0 {
		_, created, _, err := t.fw6.Setup()
		if err != nil {
			return err
		}
		t.new.Host.Tables6Created = created
	}
	step, err := t.e.kernel.SysctlStep(forwarding6, "1")
	if err != nil || step == nil {
		return err
	}
	if !t.new.Host.Forwarding6Enabled {
		policy, err := t.fw6.ForwardPolicy()
		if err != nil {
			return err
		}
		t.new.Host.Forwarding6Enabled, t.new.Host.Forward6PolicyWas = true, policy
	}
	t.setup = append(t.setup, step)
	return nil
}

// converge runs a repair: steps are applied best-effort, without journal
// or rollback, then the (possibly updated) records are written.
func (e *Engine) converge(title string, build func(t *tx) error) error {
	return e.transact(title, build, true)
}
