package engine

import (
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

// ruleSteps asks the firewall backend for the steps between the old and
// the new state's intent.
func (t *tx) ruleSteps() ([]plan.Step, error) {
	return t.fw.Change(model.Intent(t.old), model.Intent(t.new))
}

// hostSetup records and plans what the first network changes on the host:
// what the firewall backend prepares, and IP forwarding (with the FORWARD
// policy DROP when we had to turn it on).
func (t *tx) hostSetup() error {
	if len(t.old.Networks) > 0 {
		return nil
	}
	steps, created, policy, err := t.fw.Setup()
	if err != nil {
		return err
	}
	t.new.Host.TablesCreated = created
	t.setup = append(t.setup, steps...)
	step, err := t.e.kernel.SysctlStep("net.ipv4.ip_forward", "1")
	if err != nil {
		return err
	}
	if step != nil {
		t.new.Host.ForwardingEnabled = true
		t.new.Host.ForwardPolicyWas = policy
		t.setup = append(t.setup, step)
	}
	return nil
}

// hostTeardown puts the host back as the first network found it, once the
// last network is gone.
func (t *tx) hostTeardown() {
	if len(t.new.Networks) > 0 {
		return
	}
	if t.old.Host.ForwardingEnabled {
		t.teardown = append(t.teardown, plan.Reverse{Inner: &sysctl.Step{Key: "net.ipv4.ip_forward", Value: "1", Old: "0"}})
	}
	t.teardown = append(t.teardown, t.fw.Teardown(t.old.Host.TablesCreated)...)
	t.new.Host = store.Host{Schema: store.Schema}
}
