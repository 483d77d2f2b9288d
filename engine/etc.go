package engine

import (
	"os"
	"path/filepath"
	"sort"

	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/store"
)

// syncHosts plans the /etc/hosts changes of every sandbox that shares a
// network with the named one, before or after the command, and of the
// named one itself if it exists before and after. A sandbox created or
// removed by the command has its own files in its setup or teardown.
// Every such neighbour gains or loses a line, so only the new content is
// computed, from an index of the networks' members built once.
func (t *tx) syncHosts(name string) error {
	nets := map[string]bool{}
	for _, s := range []*store.State{t.old, t.new} {
		if sb := s.Sandboxes[name]; sb != nil {
			for _, ep := range sb.Endpoints {
				nets[ep.Network] = true
			}
		}
	}
	affected := map[string]bool{}
	if t.old.Sandboxes[name] != nil && t.new.Sandboxes[name] != nil {
		affected[name] = true
	}
	oldIdx, newIdx := model.IndexMembers(t.old), model.IndexMembers(t.new)
	for n := range nets {
		for _, idx := range []model.Members{oldIdx, newIdx} {
			for _, m := range idx[n] {
				if m.Sandbox.Name != name && t.old.Sandboxes[m.Sandbox.Name] != nil && t.new.Sandboxes[m.Sandbox.Name] != nil {
					affected[m.Sandbox.Name] = true
				}
			}
		}
	}
	names := make([]string, 0, len(affected))
	for n := range affected {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.files = append(t.files, &etcfiles.File{Path: filepath.Join(etcfiles.Dir(n), "hosts"), Content: model.HostsFileFrom(t.new, newIdx, t.new.Sandboxes[n])})
	}
	return nil
}

// resolvConf derives a sandbox's resolv.conf from the host's.
func (t *tx) resolvConf() (string, error) {
	b, src, err := t.e.kernel.ResolvConf()
	if err != nil {
		return "", err
	}
	return etcfiles.ResolvConf(b, src), nil
}

// etcFiles returns the steps that write a sandbox's three /etc files.
func (t *tx) etcFiles(s *store.State, sb *store.Sandbox) ([]*etcfiles.File, error) {
	resolv, err := t.resolvConf()
	if err != nil {
		return nil, err
	}
	dir := etcfiles.Dir(sb.Name)
	return []*etcfiles.File{
		{Path: filepath.Join(dir, "hosts"), Content: model.HostsFile(s, sb)},
		{Path: filepath.Join(dir, "resolv.conf"), Content: resolv},
		{Path: filepath.Join(dir, "hostname"), Content: sb.Hostname + "\n"},
	}, nil
}

// resyncEtc rewrites every sandbox's /etc files from a state, after a crash
// recovery restored the records.
func (e *Engine) resyncEtc(s *store.State) error {
	t := &tx{e: e, old: s, new: s}
	for _, name := range s.SandboxNames() {
		sb := s.Sandboxes[name]
		if sb.Mode == store.ModeHost || !nsnet.Exists(name) {
			continue
		}
		files, err := t.etcFiles(s, sb)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(etcfiles.Dir(name), 0o755); err != nil {
			return err
		}
		for _, f := range files {
			if err := f.Apply(nil); err != nil {
				return err
			}
		}
	}
	return nil
}
