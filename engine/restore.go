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
	// After a reboot the default network may have no sandbox left, nor
	// the overlay networks' parts here and the gateway bridge.
	if err := t.settleDefault(); err != nil {
		return err
	}
	if err := t.dropUnneeded(); err != nil {
		return err
	}
	if len(t.new.Networks) == 0 {
		return nil
	}
	if model.Bridged(t.new) {
		if err := t.restoreFamily(false); err != nil {
			return err
		}
	}
	if model.HasIPv6(t.new) {
		if err := t.restoreFamily(true); err != nil {
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

// converge runs a repair: steps are applied best-effort, without journal
// or rollback, then the (possibly updated) records are written.
func (e *Engine) converge(title string, build func(t *tx) error) error {
	return e.transact(title, build, true)
}
