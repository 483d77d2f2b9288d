// Package store keeps minidocker-net's records: network definitions under a
// directory that survives a reboot, sandboxes and host facts under one that
// does not. Files are JSON with a schema version, written atomically, and
// every command holds a file lock for its whole run, so parallel
// invocations never hand out the same address or port.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/rawfile"
)

// Default locations.
const (
	DefaultLib = "/var/lib/minidocker-net"
	DefaultRun = "/run/minidocker-net"
	// EnvStateDir overrides both: DIR/lib and DIR/run.
	EnvStateDir = "MINIDOCKER_NET_STATE_DIR"
)

// Paths says where state lives.
type Paths struct {
	Lib string // survives a reboot: network definitions
	Run string // cleared by a reboot: sandboxes, host facts, journal, lock
}

// PathsFor returns the default paths, or DIR/lib and DIR/run for a state
// directory given by flag or environment.
func PathsFor(stateDir string) Paths {
	if stateDir == "" {
		return Paths{Lib: DefaultLib, Run: DefaultRun}
	}
	return Paths{Lib: filepath.Join(stateDir, "lib"), Run: filepath.Join(stateDir, "run")}
}

func (p Paths) networksDir() string  { return filepath.Join(p.Lib, "networks") }
func (p Paths) sandboxesDir() string { return filepath.Join(p.Run, "sandboxes") }

// NetworkFile is where a network definition is stored. Network names are
// as free as Docker's, so the file is named by the name's escaped form.
func (p Paths) NetworkFile(name string) string {
	return filepath.Join(p.networksDir(), fileName(name)+".json")
}

// fileName escapes a record's name into a file name: [a-zA-Z0-9_-] and
// inner dots as they are, every other byte as %XX.
func fileName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// recordName undoes fileName.
func recordName(file string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(file); i++ {
		if file[i] != '%' {
			b.WriteByte(file[i])
			continue
		}
		if i+2 >= len(file) {
			return "", false
		}
		v, err := strconv.ParseUint(file[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

// SandboxFile is where a sandbox record is stored.
func (p Paths) SandboxFile(name string) string {
	return filepath.Join(p.sandboxesDir(), fileName(name)+".json")
}

// HostFile is where host facts are stored.
func (p Paths) HostFile() string { return filepath.Join(p.Run, "host.json") }

// JournalFile holds the plan of a command in progress.
func (p Paths) JournalFile() string { return filepath.Join(p.Run, "journal.json") }

// RulesetCache keeps the ruleset as the last command left it (see
// iptables.LoadCache).
func (p Paths) RulesetCache() string { return filepath.Join(p.Run, "ruleset.save") }

// RulesetCache6 is RulesetCache's for IPv6.
func (p Paths) RulesetCache6() string { return filepath.Join(p.Run, "ruleset6.save") }

// LogFile keeps the output of a sandbox's detached process.
func (p Paths) LogFile(name string) string { return filepath.Join(p.Run, "logs", name+".log") }

// The resolver's files: its socket, pid file and log.
func (p Paths) ResolverSocket() string { return filepath.Join(p.Run, "resolver.sock") }
func (p Paths) ResolverPid() string    { return filepath.Join(p.Run, "resolver.pid") }
func (p Paths) ResolverLog() string    { return filepath.Join(p.Run, "resolver.log") }

// Store is an open, locked state directory.
type Store struct {
	Paths
	lock *os.File
	// otherBoot: the run directory is from an earlier boot, and this
	// reader must not believe it.
	otherBoot bool
}

// Open creates the directories if needed and takes the lock: exclusive for
// commands that change something, shared for those that only read.
func Open(p Paths, exclusive bool) (*Store, error) {
	if err := p.makeDirs(); err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		f, err := os.OpenFile(p.LockFile(), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open state lock: %w", err)
		}
		for {
			err = unix.Flock(int(f.Fd()), how)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock state directory %s: %w", p.Run, err)
		}
		// reset removes the lock file while holding it: a command that
		// waited on the old file takes the lock again on the new one.
		if same, err := sameFile(f, p.LockFile()); err != nil || !same {
			f.Close()
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("lock state directory %s: %w", p.Run, err)
			}
			if err := p.makeDirs(); err != nil {
				return nil, err
			}
			continue
		}
		s := &Store{Paths: p, lock: f}
		if err := s.checkBoot(exclusive); err != nil {
			f.Close()
			return nil, err
		}
		return s, nil
	}
}

// BootIDFile says which boot the kernel is in.
var BootIDFile = "/proc/sys/kernel/random/boot_id"

func (p Paths) bootStamp() string { return filepath.Join(p.Run, "boot_id") }

// checkBoot notices a run directory written in an earlier boot. Where /run
// is not a tmpfs a reboot does not clear it, yet the sandboxes, host facts
// and journal it holds describe kernel objects the reboot destroyed: a
// reader ignores them, a writer removes them and stamps the directory with
// the current boot.
func (s *Store) checkBoot(exclusive bool) error {
	cur, err := os.ReadFile(BootIDFile)
	if err != nil {
		return nil // no boot id to go by (not Linux's procfs): trust the directory
	}
	stamp, err := os.ReadFile(s.bootStamp())
	if err == nil && bytes.Equal(stamp, cur) {
		return nil
	}
	s.otherBoot = err == nil
	if !exclusive {
		return nil
	}
	if s.otherBoot {
		for _, f := range s.RunFiles() {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("forget the previous boot's %s: %w", f, err)
			}
		}
		s.otherBoot = false
	}
	return replaceFile(s.bootStamp(), cur, 0o644, false)
}

// LibFiles lists the files there are under the lib directory: the
// network definitions and the engine ID.
func (p Paths) LibFiles() []string {
	files := entries(p.networksDir())
	for _, f := range []string{p.EngineIDFile(), p.ClusterFile()} {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	return files
}

// ClusterFile holds the cluster this host joined (see package cluster).
func (p Paths) ClusterFile() string { return filepath.Join(p.Lib, "cluster.json") }

// NetworkFiles lists the network definitions there are.
func (p Paths) NetworkFiles() []string { return entries(p.networksDir()) }

// RunFiles lists the files there are under the run directory that
// describe this boot's kernel objects: sandbox records and their logs,
// host facts, the journal and the ruleset cache.
func (p Paths) RunFiles() []string {
	files := append(entries(p.sandboxesDir()), entries(filepath.Join(p.Run, "logs"))...)
	for _, f := range []string{p.HostFile(), p.JournalFile(), p.RulesetCache(), p.RulesetCache6(), p.ResolverSocket(), p.ResolverPid(), p.ResolverLog()} {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	return files
}

func entries(dir string) []string {
	es, _ := os.ReadDir(dir)
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

func (p Paths) makeDirs() error {
	for _, d := range []string{p.networksDir(), p.sandboxesDir(), filepath.Join(p.Run, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create state directory: %w", err)
		}
	}
	return nil
}

// EngineIDFile holds the host's engine ID, which its IPv6 ULA prefix is
// derived from (as Docker's /var/lib/docker/engine-id).
func (p Paths) EngineIDFile() string { return filepath.Join(p.Lib, "engine-id") }

// EngineID returns the host's engine ID, made with newID and kept (when
// keep) the first time it is asked for.
func (p Paths) EngineID(newID func() string, keep bool) (string, error) {
	if b, err := os.ReadFile(p.EngineIDFile()); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("read the engine ID: %w", err)
	}
	id := newID()
	if keep {
		if err := replaceFile(p.EngineIDFile(), []byte(id+"\n"), 0o644, true); err != nil {
			return "", err
		}
	}
	return id, nil
}

// LockFile is the file every command locks.
func (p Paths) LockFile() string { return filepath.Join(p.Run, "lock") }

func sameFile(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// Skeleton lists what Open creates, deepest first, so that removing them in
// order leaves nothing: the files before their directory, the lock last.
func (p Paths) Skeleton() []string {
	return []string{p.networksDir(), p.Lib, p.sandboxesDir(), filepath.Join(p.Run, "logs"), p.bootStamp(), p.LockFile(), p.Run}
}

// Close releases the lock.
func (s *Store) Close() error { return s.lock.Close() }

// CorruptError reports a state file that cannot be read back. The file is
// left as it is: nothing is ever silently reset.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s is corrupt (%v); it was left untouched: repair or remove it, 'minidocker-net doctor' shows what the kernel holds", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// record is what every state file carries: a schema version and, for
// networks and sandboxes, the name the file is called by; migrate brings
// a record of an older schema up to date.
type record interface {
	header() (int, string)
	migrate(from int)
}

func (n *Network) header() (int, string) { return n.Schema, n.Name }
func (s *Sandbox) header() (int, string) { return s.Schema, s.Name }
func (h *Host) header() (int, string)    { return h.Schema, "" }

// Version 1 networks were all bridge networks.
func (n *Network) migrate(from int) {
	if from < 2 && n.Driver == "" {
		n.Driver = "bridge"
	}
	n.Schema = Schema
}
func (s *Sandbox) migrate(int) { s.Schema = Schema }
func (h *Host) migrate(int)    { h.Schema = Schema }

// readable reports whether this minidocker-net reads a schema version.
func readable(schema int) bool { return schema == 1 || schema == Schema }

func decode(path string, data []byte, v record, name string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &CorruptError{Path: path, Err: err}
	}
	if dec.More() {
		return &CorruptError{Path: path, Err: fmt.Errorf("data after the record")}
	}
	schema, got := v.header()
	if !readable(schema) {
		return &CorruptError{Path: path, Err: fmt.Errorf("schema version %d, this minidocker-net reads 1 to %d", schema, Schema)}
	}
	v.migrate(schema)
	if name != "" && got != name {
		return &CorruptError{Path: path, Err: fmt.Errorf("it names %q, not %q", got, name)}
	}
	return nil
}

// Load reads every record.
func (s *Store) Load() (*State, error) {
	st := NewState()
	var err error
	if st.Networks, err = loadDir(s.networksDir(), func() *Network { return &Network{} }); err != nil {
		return nil, err
	}
	if s.otherBoot {
		return st, nil
	}
	if st.Sandboxes, err = loadDir(s.sandboxesDir(), func() *Sandbox { return &Sandbox{} }); err != nil {
		return nil, err
	}
	data, err := rawfile.Read(s.HostFile())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := decode(s.HostFile(), data, &st.Host, ""); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// ReadState reads the records without taking the lock, for the resolver
// process: a command that changed them holds the lock while it asks the
// resolver to read them, and every file is replaced atomically.
func ReadState(p Paths) (*State, error) { return (&Store{Paths: p}).Load() }

// ReadChanged brings a state read with ReadState up to date with the
// record files a command changed (a file that is gone removes its record):
// the resolver reads those, not every record, after each command.
func ReadChanged(p Paths, st *State, files []string) error {
	for _, f := range files {
		dir, base := filepath.Dir(f), filepath.Base(f)
		file, ok := strings.CutSuffix(base, ".json")
		if !ok {
			continue
		}
		name, ok := recordName(file)
		if !ok {
			continue
		}
		data, err := rawfile.Read(f)
		gone := errors.Is(err, os.ErrNotExist)
		if err != nil && !gone {
			return err
		}
		switch dir {
		case p.networksDir():
			if gone {
				delete(st.Networks, name)
				continue
			}
			n := &Network{}
			if err := decode(f, data, n, name); err != nil {
				return err
			}
			st.Networks[name] = n
		case p.sandboxesDir():
			if gone {
				delete(st.Sandboxes, name)
				continue
			}
			sb := &Sandbox{}
			if err := decode(f, data, sb, name); err != nil {
				return err
			}
			if err := sidePorts(dir, f, sb); err != nil {
				return err
			}
			st.Sandboxes[name] = sb
		}
	}
	return nil
}

// LoadReadable reads every record that can be read, for doctor: the
// state of those, and an error for each one that cannot.
func (s *Store) LoadReadable() (*State, []error) {
	st := NewState()
	var errs []error
	nets, nerrs := loadEach(s.networksDir(), func() *Network { return &Network{} })
	st.Networks, errs = nets, append(errs, nerrs...)
	if s.otherBoot {
		return st, errs
	}
	sbs, serrs := loadEach(s.sandboxesDir(), func() *Sandbox { return &Sandbox{} })
	st.Sandboxes, errs = sbs, append(errs, serrs...)
	data, err := rawfile.Read(s.HostFile())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		errs = append(errs, err)
	default:
		if err := decode(s.HostFile(), data, &st.Host, ""); err != nil {
			errs = append(errs, err)
		}
	}
	return st, errs
}

// parallelFrom is how many records make decoding them on every CPU worth
// its goroutines: decoding is most of a command's fixed cost on a big host
// (about 16 µs a record).
const parallelFrom = 32

// loadDir reads and decodes every record of a directory; of several bad
// ones, the first by name is reported.
func loadDir[T record](dir string, mk func() T) (map[string]T, error) {
	out, errs := loadEach(dir, mk)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

// loadEach reads and decodes every record of a directory: those that can
// be read, and an error for each of the others, by name.
func loadEach[T record](dir string, mk func() T) (map[string]T, []error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return map[string]T{}, []error{fmt.Errorf("read state directory: %w", err)}
	}
	var files []string
	for _, e := range entries {
		if file, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() && !strings.HasPrefix(file, ".") {
			files = append(files, file) // others: temporary files of an interrupted write
		}
	}
	names := make([]string, len(files))
	recs := make([]T, len(names))
	errs := make([]error, len(names))
	load := func(i int) {
		path := filepath.Join(dir, files[i]+".json")
		name, ok := recordName(files[i])
		names[i] = name
		if !ok {
			errs[i] = &CorruptError{Path: path, Err: errors.New("its name is not one minidocker-net writes")}
			return
		}
		data, err := rawfile.Read(path)
		if err == nil {
			recs[i] = mk()
			err = decode(path, data, recs[i], names[i])
		}
		if err == nil {
			err = sidePorts(dir, path, recs[i])
		}
		errs[i] = err
	}
	workers := runtime.GOMAXPROCS(0)
	if len(names) < parallelFrom || workers < 2 {
		for i := range names {
			load(i)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
					load(i)
				}
			})
		}
		wg.Wait()
	}
	out := make(map[string]T, len(names))
	var bad []error
	for i, name := range names {
		if errs[i] != nil {
			bad = append(bad, errs[i])
			continue
		}
		out[name] = recs[i]
	}
	return out, bad
}

// portsFile is where a sandbox with many ports keeps them.
func (p Paths) portsFile(name string) string {
	return filepath.Join(p.sandboxesDir(), fileName(name)+".ports")
}

// sidePorts reads the ports file a sandbox's record names, if any.
func sidePorts(dir, path string, rec any) error {
	sb, ok := rec.(*Sandbox)
	if !ok || sb.PortsFile == "" {
		return nil
	}
	if filepath.Base(sb.PortsFile) != sb.PortsFile || !strings.HasSuffix(sb.PortsFile, ".ports") {
		return &CorruptError{Path: path, Err: fmt.Errorf("its ports file %q is not one minidocker-net writes", sb.PortsFile)}
	}
	file := filepath.Join(dir, sb.PortsFile)
	data, err := rawfile.Read(file)
	if err != nil {
		return &CorruptError{Path: path, Err: fmt.Errorf("its ports file: %w", err)}
	}
	ports, err := parsePortsText(data)
	if err != nil {
		return &CorruptError{Path: file, Err: err}
	}
	sb.Ports, sb.PortsFile = ports, ""
	return nil
}

// FileChange is the content a file must have after a command; nil removes it.
type FileChange struct {
	Path string  `json:"path"`
	Data *string `json:"data"`
}

// SameSandbox compares two records; their published ports first, with
// ==, which reflect takes a hundred times longer for.
func SameSandbox(a, b *Sandbox) bool {
	if !slices.Equal(a.Ports, b.Ports) {
		return false
	}
	ac, bc := *a, *b
	ac.Ports, bc.Ports = nil, nil
	return reflect.DeepEqual(&ac, &bc)
}

// Diff lists the files that differ between two states, with the content
// each must have in `to` (nil: remove). Records equal in both are not
// encoded at all: a command touches few of many.
func (s *Store) Diff(from, to *State) ([]FileChange, error) {
	var out []FileChange
	put := func(path string, v any) error {
		// Not HTML-escaped: a published port reads 8080->80/tcp.
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		d := b.String()
		out = append(out, FileChange{Path: path, Data: &d})
		return nil
	}
	for name, n := range to.Networks {
		if old, ok := from.Networks[name]; !ok || !reflect.DeepEqual(old, n) {
			n.Schema = Schema
			if err := put(s.NetworkFile(name), n); err != nil {
				return nil, err
			}
		}
	}
	for name := range from.Networks {
		if _, ok := to.Networks[name]; !ok {
			out = append(out, FileChange{Path: s.NetworkFile(name)})
		}
	}
	for name, sb := range to.Sandboxes {
		old, ok := from.Sandboxes[name]
		if ok && SameSandbox(old, sb) {
			continue
		}
		sb.Schema = Schema
		rec := sb
		if len(sb.Ports) >= PortsFileFrom {
			// Many ports: in a file of their own beside the record.
			c := *sb
			c.Ports, c.PortsFile = nil, filepath.Base(s.portsFile(name))
			rec = &c
			d := portsText(sb.Ports)
			out = append(out, FileChange{Path: s.portsFile(name), Data: &d})
		} else if ok && len(old.Ports) >= PortsFileFrom {
			out = append(out, FileChange{Path: s.portsFile(name)})
		}
		if err := put(s.SandboxFile(name), rec); err != nil {
			return nil, err
		}
	}
	for name, old := range from.Sandboxes {
		if _, ok := to.Sandboxes[name]; !ok {
			out = append(out, FileChange{Path: s.SandboxFile(name)})
			if len(old.Ports) >= PortsFileFrom {
				out = append(out, FileChange{Path: s.portsFile(name)})
			}
		}
	}
	if !reflect.DeepEqual(from.Host, to.Host) {
		// The host file is written only when it says something, so an
		// unused state directory stays empty.
		if to.Host.empty() {
			out = append(out, FileChange{Path: s.HostFile()})
		} else {
			to.Host.Schema = Schema
			if err := put(s.HostFile(), to.Host); err != nil {
				return nil, err
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (h Host) empty() bool {
	return !h.ForwardingEnabled && h.ForwardPolicyWas == "" && len(h.TablesCreated) == 0 && len(h.LastPort) == 0
}

// Write applies file changes, each atomically. Only network definitions
// are synced to disk: everything under the run directory describes kernel
// objects a reboot destroys, so it needs atomicity (a crashed command leaves
// the old file or the new) but not durability, and an fsync costs about a
// millisecond on a disk-backed /run.
func (s *Store) Write(changes []FileChange) error {
	for _, c := range changes {
		if c.Data == nil {
			if err := os.Remove(c.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", c.Path, err)
			}
			continue
		}
		if err := replaceFile(c.Path, []byte(*c.Data), 0o644, s.durable(c.Path)); err != nil {
			return err
		}
	}
	return nil
}

func (p Paths) durable(path string) bool {
	return strings.HasPrefix(path, p.Lib+string(filepath.Separator))
}

// replaceFile writes a temporary file and renames it over path, so a
// reader sees the old content or the new, never a mix; sync makes the new
// content durable before and after the rename.
func replaceFile(path string, data []byte, perm os.FileMode, sync bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(data); err == nil && sync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), perm)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if sync {
		if d, err := os.Open(dir); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return nil
}
