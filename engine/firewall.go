package engine

import (
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

// ruleSteps asks the firewall backends for the steps between the old and
// the new state's intent, IPv4's and, where IPv6 networks are or were,
// IPv6's.
func (t *tx) ruleSteps() ([]plan.Step, error) {
	steps, err := t.fw.Change(model.Intent(t.old), model.Intent(t.new))
	if err != nil || !model.HasIPv6(t.old) && !model.HasIPv6(t.new) {
		return steps, err
	}
	steps6, err := t.fw6.Change(model.Intent6(t.old), model.Intent6(t.new))
	return append(steps, steps6...), err
}

// hostSetup records and plans what the first network changes on the host:
// what the firewall backend prepares, and IP forwarding (with the FORWARD
// policy DROP when we had to turn it on).
func (t *tx) hostSetup() error {
	if model.Bridged(t.old) {
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

// hostSetup6 records and plans what the first IPv6 network changes on the
// host: the ip6tables tables it will create, and IPv6 forwarding (the
// FORWARD policy DROP when we turned it on, as Docker does).
func (t *tx) hostSetup6() error {
	if model.HasIPv6(t.old) {
		return nil
	}
	steps, created, policy, err := t.fw6.Setup()
	if err != nil {
		return err
	}
	t.new.Host.Tables6Created = created
	t.setup = append(t.setup, steps...)
	step, err := t.e.kernel.SysctlStep(forwarding6, "1")
	if err != nil {
		return err
	}
	if step != nil {
		t.new.Host.Forwarding6Enabled = true
		t.new.Host.Forward6PolicyWas = policy
		t.setup = append(t.setup, step)
	}
	return nil
}

// forwarding6 is IPv6 forwarding for the whole host: all.forwarding, as
// Docker sets it for an IPv6 network.
const forwarding6 = "net.ipv6.conf.all.forwarding"

// hostTeardown6 puts IPv6 back as the first IPv6 network found it, once
// the last one is gone.
func (t *tx) hostTeardown6() {
	if !model.HasIPv6(t.old) || model.HasIPv6(t.new) {
		return
	}
	if t.old.Host.Forwarding6Enabled {
		t.teardown = append(t.teardown, plan.Reverse{Inner: &sysctl.Step{Key: forwarding6, Value: "1", Old: "0"}})
	}
	t.teardown = append(t.teardown, t.fw6.Teardown(t.old.Host.Tables6Created)...)
	t.new.Host.Forwarding6Enabled, t.new.Host.Forward6PolicyWas, t.new.Host.Tables6Created = false, "", nil
}

// hostTeardown puts the host back as the first network found it, once the
// last network is gone.
func (t *tx) hostTeardown() {
	if model.Bridged(t.new) || !model.Bridged(t.old) {
		return
	}
	if t.old.Host.ForwardingEnabled {
		t.teardown = append(t.teardown, plan.Reverse{Inner: &sysctl.Step{Key: "net.ipv4.ip_forward", Value: "1", Old: "0"}})
	}
	t.teardown = append(t.teardown, t.fw.Teardown(t.old.Host.TablesCreated)...)
	t.new.Host = store.Host{Schema: store.Schema}
}
