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
	// Both lists hold each sandbox's mappings together, sandboxes in
	// name order (model.Intent): walk them side by side, no map, no copy.
	b, a := old.Ports, cur.Ports
	for len(b) > 0 || len(a) > 0 {
		name := ""
		switch {
		case len(a) == 0 || len(b) > 0 && b[0].Sandbox < a[0].Sandbox:
			name = b[0].Sandbox
		default:
			name = a[0].Sandbox
		}
		var bs, as []Port
		bs, b = run(b, name)
		as, a = run(a, name)
		if slices.Equal(bs, as) {
			continue
		}
		changed := changedGroups(bs, as)
		for _, p := range bs {
			if changed[shareGroup(p)] {
				before = append(before, p)
			}
		}
		for _, p := range as {
			if changed[shareGroup(p)] {
				after = append(after, p)
			}
		}
	}
	return before, after
}

// run splits off the leading mappings of sandbox name.
func run(ps []Port, name string) ([]Port, []Port) {
	i := 0
	for i < len(ps) && ps[i].Sandbox == name {
		i++
	}
	return ps[:i], ps[i:]
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
