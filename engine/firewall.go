package engine

import (
	"github.com/minidocker-net/minidocker-net/firewall"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
	"github.com/minidocker-net/minidocker-net/sysctl"
)

// ruleSteps asks the firewall backends for the steps between the old and
// the new state's intent, IPv4's and, where IPv6 networks are or were,
// IPv6's.
func (t *tx) ruleSteps() ([]plan.Step, error) {
	steps, err := t.fw.Change(model.IntentChange(t.old, t.new))
	if err != nil || !model.HasIPv6(t.old) && !model.HasIPv6(t.new) {
		return steps, err
	}
	steps6, err := t.fw6.Change(model.IntentChange6(t.old, t.new))
	return append(steps, steps6...), err
}

// hostFamily is one address family's part of the host: its firewall
// backend, its forwarding sysctl, and what the host record keeps of it
// (whether we turned forwarding on, the FORWARD policy before, the tables
// the backend created).
type hostFamily struct {
	fw      firewall.Backend
	sysctl  string
	enabled *bool
	policy  *string
	tables  *[]string
}

// forwarding6 is IPv6 forwarding for the whole host: all.forwarding, as
// Docker sets it for an IPv6 network.
const forwarding6 = "net.ipv6.conf.all.forwarding"

// familyOf is IPv4's or IPv6's part of a host record, with that
// family's backend (fw for IPv4, fw6 for IPv6).
func familyOf(h *store.Host, v6 bool, fw, fw6 firewall.Backend) hostFamily {
	if v6 {
		return hostFamily{fw6, forwarding6, &h.Forwarding6Enabled, &h.Forward6PolicyWas, &h.Tables6Created}
	}
	return hostFamily{fw, "net.ipv4.ip_forward", &h.ForwardingEnabled, &h.ForwardPolicyWas, &h.TablesCreated}
}

func (t *tx) family(h *store.Host, v6 bool) hostFamily { return familyOf(h, v6, t.fw, t.fw6) }

// hostSetup records and plans what the first bridge network changes on
// the host: what the firewall backend prepares, and IP forwarding (with
// the FORWARD policy DROP when we had to turn it on, as Docker does).
func (t *tx) hostSetup() error {
	if model.Bridged(t.old) {
		return nil
	}
	return t.setupFamily(false)
}

// hostSetup6 is hostSetup for the first IPv6 network: ip6tables and IPv6
// forwarding.
func (t *tx) hostSetup6() error {
	if model.HasIPv6(t.old) {
		return nil
	}
	return t.setupFamily(true)
}

func (t *tx) setupFamily(v6 bool) error {
	f := t.family(&t.new.Host, v6)
	steps, created, policy, err := f.fw.Setup()
	if err != nil {
		return err
	}
	*f.tables = created
	t.setup = append(t.setup, steps...)
	step, err := t.e.kernel.SysctlStep(f.sysctl, "1")
	if err != nil {
		return err
	}
	if step != nil {
		*f.enabled, *f.policy = true, policy
		t.setup = append(t.setup, step)
	}
	return nil
}

// teardownFamily undoes setupFamily, as the old record says it was done.
func (t *tx) teardownFamily(v6 bool) {
	f := t.family(&t.old.Host, v6)
	if *f.enabled {
		t.teardown = append(t.teardown, plan.Reverse{Inner: &sysctl.Step{Key: f.sysctl, Value: "1", Old: "0"}})
	}
	t.teardown = append(t.teardown, f.fw.Teardown(*f.tables)...)
}

// hostTeardown6 puts IPv6 back as the first IPv6 network found it, once
// the last one is gone.
func (t *tx) hostTeardown6() {
	if !model.HasIPv6(t.old) || model.HasIPv6(t.new) {
		return
	}
	t.teardownFamily(true)
	n := t.family(&t.new.Host, true)
	*n.enabled, *n.policy, *n.tables = false, "", nil
}

// hostTeardown puts the host back as the first network found it, once the
// last bridge network is gone.
func (t *tx) hostTeardown() {
	if model.Bridged(t.new) || !model.Bridged(t.old) {
		return
	}
	t.teardownFamily(false)
	t.new.Host = store.Host{Schema: store.Schema}
}

// restoreFamily is a family's part of the host as restore finds it:
// after a reboot the host record is gone with /run, so what the first
// network changes is noted again; forwarding on.
func (t *tx) restoreFamily(v6 bool) error {
	f := t.family(&t.new.Host, v6)
	if !*f.enabled && len(*f.tables) == 0 {
		_, created, _, err := f.fw.Setup()
		if err != nil {
			return err
		}
		*f.tables = created
	}
	step, err := t.e.kernel.SysctlStep(f.sysctl, "1")
	if err != nil || step == nil {
		return err
	}
	if !*f.enabled {
		policy, err := f.fw.ForwardPolicy()
		if err != nil {
			return err
		}
		*f.enabled, *f.policy = true, policy
	}
	t.setup = append(t.setup, step)
	return nil
}
