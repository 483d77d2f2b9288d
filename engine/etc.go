package engine

import (
	"os"
	"path/filepath"

	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/store"
)

// syncEtc plans the rewrite of a sandbox's own /etc files that the
// command changes, when it exists before and after (a sandbox created or
// removed has its files in its setup or teardown). No other sandbox's
// files change: names are the embedded DNS's, so a neighbour coming or
// going rewrites nobody's hosts file.
func (t *tx) syncEtc(name string) error {
	oldSb, newSb := t.old.Sandboxes[name], t.new.Sandboxes[name]
	if oldSb == nil || newSb == nil || newSb.Mode == store.ModeHost {
		return nil
	}
	before, err := t.etcFiles(t.old, oldSb)
	if err != nil {
		return err
	}
	after, err := t.etcFiles(t.new, newSb)
	if err != nil {
		return err
	}
	for i, f := range after {
		if f.Content != before[i].Content {
			t.files = append(t.files, f)
		}
	}
	return nil
}

// resolvConf derives a sandbox's resolv.conf from the host's: the
// embedded DNS's for a sandbox it serves, else the host's servers.
func (t *tx) resolvConf(s *store.State, sb *store.Sandbox) (string, error) {
	b, src, err := t.e.kernel.ResolvConf()
	if err != nil {
		return "", err
	}
	own := etcfiles.Resolver{Servers: sb.DNS, Search: sb.DNSSearch, Options: sb.DNSOptions}
	if model.DNSServed(s, sb) {
		return etcfiles.InternalResolvConf(b, src, model.ResolverIP.String(), own), nil
	}
	return etcfiles.ResolvConf(b, src, own), nil
}

// etcFiles returns the steps that write a sandbox's three /etc files.
func (t *tx) etcFiles(s *store.State, sb *store.Sandbox) ([]*etcfiles.File, error) {
	resolv, err := t.resolvConf(s, sb)
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
