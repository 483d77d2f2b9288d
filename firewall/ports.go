package firewall

import (
	"net/netip"
	"slices"
)

// ChangedPorts returns the published ports of two intents whose firewall
// objects may differ: sandbox by sandbox where the list changed, every
// mapping of a group that changed (mappings sharing a container port
// share its rules or elements), before and after. Unchanged mappings
// give both sides the same objects, so a backend diffs only these, and
// publishing one more port does not rebuild every other.
func ChangedPorts(old, cur Intent) (before, after []Port) {
	oldPorts, curPorts := bySandbox(old.Ports), bySandbox(cur.Ports)
	for _, n := range UnionKeys(oldPorts, curPorts) {
		b, a := oldPorts[n], curPorts[n]
		if slices.Equal(b, a) {
			continue
		}
		changed := changedGroups(b, a)
		for _, p := range b {
			if changed[shareGroup(p)] {
				before = append(before, p)
			}
		}
		for _, p := range a {
			if changed[shareGroup(p)] {
				after = append(after, p)
			}
		}
	}
	return before, after
}

func bySandbox(ps []Port) map[string][]Port {
	m := map[string][]Port{}
	for _, p := range ps {
		m[p.Sandbox] = append(m[p.Sandbox], p)
	}
	return m
}

// portGroup is what mappings sharing rules have in common: two host ports
// onto one container port share its ACCEPT and its MASQUERADE.
type portGroup struct {
	IP            netip.Addr
	Bridge, Proto string
	Port, PortEnd int
}

func shareGroup(p Port) portGroup {
	return portGroup{IP: p.IP, Bridge: p.Bridge, Proto: p.Proto, Port: p.Port, PortEnd: p.PortEnd}
}

// changedGroups returns the groups whose mappings differ: only those are
// diffed, whole, so publishing one more port does not rebuild the rules
// of every other. A command changes few mappings of many, so what both
// lists share at either end is trimmed first; a group with no mapping in
// what remains has the same members on both sides.
func changedGroups(before, after []Port) map[portGroup]bool {
	for len(before) > 0 && len(after) > 0 && before[0] == after[0] {
		before, after = before[1:], after[1:]
	}
	for len(before) > 0 && len(after) > 0 && before[len(before)-1] == after[len(after)-1] {
		before, after = before[:len(before)-1], after[:len(after)-1]
	}
	changed := map[portGroup]bool{}
	for _, p := range append(slices.Clip(before), after...) {
		changed[shareGroup(p)] = true
	}
	return changed
}

// UnionKeys returns the keys of both maps, sorted, each once.
func UnionKeys[V any](a, b map[string]V) []string {
	out := make([]string, 0, len(a)+len(b))
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
