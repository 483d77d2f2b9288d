package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(PathsFor(t.TempDir()), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sample() *State {
	st := NewState()
	st.Networks["net"] = &Network{ID: "id1", Name: "net", Subnet: netip.MustParsePrefix("172.18.0.0/16"), Gateway: netip.MustParseAddr("172.18.0.1"), Bridge: "mdn-net", ICC: true}
	st.Sandboxes["box"] = &Sandbox{ID: "id2", Name: "box", Mode: ModeBridge, Endpoints: []*Endpoint{{ID: "e", Network: "net", IP: netip.MustParseAddr("172.18.0.2")}}}
	return st
}

func TestWriteLoadRoundTrip(t *testing.T) {
	s := open(t)
	changes, err := s.Diff(NewState(), sample())
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Fatalf("a new network and sandbox are two files (the empty host record is not written): %+v", changes)
	}
	if err := s.Write(changes); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got.Networks["net"].Subnet.String() != "172.18.0.0/16" || got.Sandboxes["box"].Endpoints[0].IP.String() != "172.18.0.2" {
		t.Errorf("loaded %+v", got)
	}
	// Removing the sandbox removes its file only.
	next := got.Clone()
	delete(next.Sandboxes, "box")
	changes, _ = s.Diff(got, next)
	if len(changes) != 1 || changes[0].Data != nil || !strings.HasSuffix(changes[0].Path, "box.json") {
		t.Errorf("diff after removal: %+v", changes)
	}
}

func TestCorruptFilesAreReportedNotReset(t *testing.T) {
	s := open(t)
	changes, _ := s.Diff(NewState(), sample())
	if err := s.Write(changes); err != nil {
		t.Fatal(err)
	}
	path := s.SandboxFile("box")
	data, _ := os.ReadFile(path)
	cur := fmt.Sprintf(`"schema": %d`, Schema)
	for name, bad := range map[string][]byte{
		"truncated":    data[:len(data)/2],
		"empty":        {},
		"other schema": []byte(strings.Replace(string(data), cur, `"schema": 99`, 1)),
		"wrong name":   []byte(strings.Replace(string(data), `"name": "box"`, `"name": "other"`, 1)),
		"unknown key":  []byte(strings.Replace(string(data), cur, cur+`, "surprise": true`, 1)),
	} {
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := s.Load()
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Path != path {
			t.Errorf("%s: want a CorruptError naming %s, got %v", name, path, err)
		}
		if after, _ := os.ReadFile(path); string(after) != string(bad) {
			t.Errorf("%s: the corrupt file was changed", name)
		}
	}
}

func TestJournal(t *testing.T) {
	s := open(t)
	if j, err := s.ReadJournal(); j != nil || err != nil {
		t.Fatalf("no journal yet: %v %v", j, err)
	}
	old := "before"
	j := &Journal{Title: "network create x", Steps: []byte(`[]`), Before: []FileChange{{Path: "/x", Data: &old}, {Path: "/y"}}}
	if err := s.WriteJournal(j); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadJournal()
	if err != nil || got.Title != j.Title || *got.Before[0].Data != "before" || got.Before[1].Data != nil {
		t.Fatalf("journal round trip: %+v %v", got, err)
	}
	if err := os.WriteFile(s.JournalFile(), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if _, err := s.ReadJournal(); !errors.As(err, &ce) {
		t.Errorf("a torn journal must be reported: %v", err)
	}
	if err := s.RemoveJournal(); err != nil {
		t.Fatal(err)
	}
}

func TestReplaceFileLeavesNoTemporaries(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	for i, sync := range []bool{true, false, true} {
		want := fmt.Sprintf("content %d", i)
		if err := replaceFile(p, []byte(want), 0o644, sync); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("sync=%v: file holds %q, want %q", sync, got, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// Only what must survive a reboot pays for an fsync.
func TestOnlyNetworkDefinitionsAreDurable(t *testing.T) {
	p := PathsFor("/state")
	for path, want := range map[string]bool{
		p.NetworkFile("test-network"): true,
		p.SandboxFile("apple-server"): false,
		p.HostFile():                  false,
		p.JournalFile():               false,
		"/state/library/x.json":       false, // a sibling sharing the prefix
	} {
		if got := p.durable(path); got != want {
			t.Errorf("durable(%s) = %v, want %v", path, got, want)
		}
	}
}

func FuzzStateFiles(f *testing.F) {
	f.Add([]byte(`{"schema":1,"id":"x","name":"box","hostname":"h","created":"2026-01-01T00:00:00Z","mode":"bridge"}`))
	f.Add([]byte(`{"schema":1,"name":"box","endpoints":[{"ip":"300.1.1.1"}]}`))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		s, err := Open(PathsFor(dir), true)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := os.WriteFile(s.SandboxFile("box"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := s.Load()
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("a bad state file must give a CorruptError, got %v", err)
			}
			return
		}
		sb := st.Sandboxes["box"]
		if sb == nil || sb.Name != "box" || sb.Schema != Schema {
			t.Fatalf("accepted a record that is not box's: %+v", sb)
		}
	})
}

// reset removes the lock file while it holds the lock: a command waiting
// on the old file must not run beside one that locks a new file.
func TestLockSurvivesItsFileBeingRemoved(t *testing.T) {
	p := PathsFor(t.TempDir())
	holder, err := Open(p, true)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Store)
	go func() {
		s, err := Open(p, true)
		if err != nil {
			t.Error(err)
		}
		got <- s
	}()
	time.Sleep(50 * time.Millisecond) // the waiter blocks on the old file
	for _, f := range p.Skeleton() {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	holder.Close()
	waiter := <-got
	if waiter == nil {
		t.FailNow()
	}
	defer waiter.Close()
	if same, err := sameFile(waiter.lock, p.LockFile()); err != nil || !same {
		t.Fatalf("the waiter holds a lock on a removed file (same %v, %v)", same, err)
	}
	// And so a third command waits for it.
	third := make(chan struct{})
	go func() {
		if s, err := Open(p, true); err == nil {
			s.Close()
		}
		close(third)
	}()
	select {
	case <-third:
		t.Fatal("a third command took the lock while the waiter held it")
	case <-time.After(50 * time.Millisecond):
	}
	waiter.Close()
	<-third
}

// A run directory from an earlier boot (on a host whose /run is not a
// tmpfs) holds sandboxes the reboot destroyed: readers ignore them, the
// next writer removes them; network definitions stay.
func TestRunDirectoryOfAnEarlierBoot(t *testing.T) {
	boot := filepath.Join(t.TempDir(), "boot_id")
	old := BootIDFile
	BootIDFile = boot
	t.Cleanup(func() { BootIDFile = old })
	write := func(id string) {
		if err := os.WriteFile(boot, []byte(id+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("first-boot")
	s := open(t)
	changes, err := s.Diff(NewState(), sample())
	if err == nil {
		err = s.Write(changes)
	}
	if err == nil {
		err = s.WriteJournal(&Journal{Title: "interrupted"})
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	write("second-boot")
	r, err := Open(s.Paths, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Load()
	r.Close()
	if err != nil || len(got.Sandboxes) != 0 || len(got.Networks) != 1 {
		t.Fatalf("a reader after a reboot sees %d sandboxes, %d networks (%v); want 0 and 1", len(got.Sandboxes), len(got.Networks), err)
	}
	if _, err := os.Stat(s.SandboxFile("box")); err != nil {
		t.Errorf("a reader must not remove anything: %v", err)
	}

	w, err := Open(s.Paths, true)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, f := range []string{s.SandboxFile("box"), s.JournalFile()} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s should be gone with the previous boot: %v", f, err)
		}
	}
	if j, err := w.ReadJournal(); j != nil || err != nil {
		t.Errorf("journal after a reboot: %v %v", j, err)
	}
	got, err = w.Load()
	if err != nil || len(got.Sandboxes) != 0 || len(got.Networks) != 1 {
		t.Errorf("after a writer: %d sandboxes, %d networks (%v)", len(got.Sandboxes), len(got.Networks), err)
	}
}

// Many records are decoded on every CPU: all arrive, and of several bad
// ones the first by name is reported, as when decoded one by one.
func TestLoadManyRecords(t *testing.T) {
	s := open(t)
	st := NewState()
	for i := range 3 * parallelFrom {
		name := fmt.Sprintf("box%03d", i)
		st.Sandboxes[name] = &Sandbox{ID: "id" + name, Name: name, Mode: ModeNone}
	}
	changes, err := s.Diff(NewState(), st)
	if err == nil {
		err = s.Write(changes)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil || len(got.Sandboxes) != 3*parallelFrom || got.Sandboxes["box077"].ID != "idbox077" {
		t.Fatalf("loaded %d sandboxes (%v)", len(got.Sandboxes), err)
	}
	for _, name := range []string{"box080", "box057"} {
		if err := os.WriteFile(s.SandboxFile(name), []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.Load()
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != s.SandboxFile("box057") {
		t.Errorf("want the first corrupt record, box057: %v", err)
	}
}

func TestRecordFileNames(t *testing.T) {
	for _, name := range []string{"plain", "a.b_c-d", "my net", "réseau", ".hidden", "100%", "a;b"} {
		f := fileName(name)
		if strings.ContainsAny(f, " /;") || strings.HasPrefix(f, ".") {
			t.Errorf("fileName(%q) = %q", name, f)
		}
		if back, ok := recordName(f); !ok || back != name {
			t.Errorf("recordName(fileName(%q)) = %q, %v", name, back, ok)
		}
	}
	if fileName("test-network") != "test-network" {
		t.Errorf("names of the old rule keep their files")
	}
	if _, ok := recordName("bad%Z"); ok {
		t.Errorf("a malformed escape is refused")
	}
}

// A network recorded before drivers were (schema 1) is a bridge network.
func TestSchemaOneNetworksAreBridgeNetworks(t *testing.T) {
	s := open(t)
	old := `{"schema": 1, "id": "ab", "name": "old", "created": "2026-11-27T00:00:00Z", "subnet": "172.18.0.0/16", "gateway": "172.18.0.1",
"ip_range": "", "bridge": "mdn-old", "icc": true, "masquerade": true}`
	if err := os.WriteFile(s.NetworkFile("old"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Networks["old"]; n == nil || n.Driver != "bridge" || n.Schema != Schema {
		t.Errorf("migrated record: %+v", n)
	}
}

// Published ports are written as docker port writes them, read back
// exactly, and records written as objects still load.
func TestPortListRoundTrip(t *testing.T) {
	in := PortList{
		{HostPort: 8080, HostPortEnd: 8080, Port: 80, PortEnd: 80, Proto: "tcp"},
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 53, HostPortEnd: 54, Port: 53, PortEnd: 54, Proto: "udp"},
		{HostIP: netip.MustParseAddr("::"), HostPort: 9000, HostPortEnd: 9000, Port: 90, PortEnd: 90, Proto: "tcp"},
		{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: 1, HostPortEnd: 1, Port: 2, PortEnd: 2, Proto: "tcp"},
	}
	data, err := json.Marshal(struct {
		Ports PortList `json:"ports"`
	}{in})
	if err != nil {
		t.Fatal(err)
	}
	escaped := data
	data = []byte(strings.ReplaceAll(string(data), `\u003e`, ">")) // as the store writes it: not HTML-escaped
	if !strings.Contains(string(data), `"8080->80/tcp 127.0.0.1:53-54->53-54/udp [::]:9000->90/tcp 0.0.0.0:1->2/tcp"`) {
		t.Errorf("written as:\n%s", data)
	}
	var back struct {
		Ports PortList `json:"ports"`
	}
	if err := json.Unmarshal(data, &back); err != nil || !slices.Equal(back.Ports, in) {
		t.Errorf("read back %v (%v), want %v", back.Ports, err, in)
	}
	if err := json.Unmarshal(escaped, &back); err != nil || !slices.Equal(back.Ports, in) {
		t.Errorf("escaped, read back %v (%v)", back.Ports, err)
	}
	old := `{"ports": [{"host_ip": "127.0.0.1", "host_port": 53, "host_port_end": 54, "port": 53, "port_end": 54, "proto": "udp"}]}`
	if err := json.Unmarshal([]byte(old), &back); err != nil || !slices.Equal(back.Ports, in[1:2]) {
		t.Errorf("an old record: %v (%v)", back.Ports, err)
	}
	if err := json.Unmarshal([]byte(`{"ports": "8080-/tcp"}`), &back); err == nil {
		t.Errorf("a bad mapping is an error")
	}
}

// Many ports go to a file of their own beside the record, come back
// exactly, and go with the record; few stay in it. The resolver's
// reading of changed files reads them too.
func TestManyPortsInAFileOfTheirOwn(t *testing.T) {
	s := open(t)
	st := sample()
	for i := 0; i < PortsFileFrom; i++ {
		st.Sandboxes["box"].Ports = append(st.Sandboxes["box"].Ports, Port{HostPort: 20000 + i, HostPortEnd: 20000 + i, Port: 80, PortEnd: 80, Proto: "udp"})
	}
	st.Sandboxes["box"].Ports[7].HostIP = netip.MustParseAddr("127.0.0.1")
	write := func(from, to *State) {
		t.Helper()
		changes, err := s.Diff(from, to)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(changes); err != nil {
			t.Fatal(err)
		}
	}
	write(NewState(), st)
	ports := s.portsFile("box")
	data, err := os.ReadFile(ports)
	if err != nil || !strings.HasPrefix(string(data), "20000->80/udp\n") || !strings.Contains(string(data), "\n127.0.0.1:20007->80/udp\n") {
		t.Fatalf("ports file: %q %v", data, err)
	}
	if rec, _ := os.ReadFile(s.SandboxFile("box")); strings.Contains(string(rec), "20000") || !strings.Contains(string(rec), `"ports_file": "box.ports"`) {
		t.Errorf("the record should name the ports file, not hold the ports:\n%s", rec)
	}
	got, err := s.Load()
	if err != nil || !slices.Equal(got.Sandboxes["box"].Ports, st.Sandboxes["box"].Ports) || got.Sandboxes["box"].PortsFile != "" {
		t.Fatalf("loaded %d ports (%v)", len(got.Sandboxes["box"].Ports), err)
	}
	changed := NewState()
	if err := ReadChanged(s.Paths, changed, []string{s.SandboxFile("box")}); err != nil || len(changed.Sandboxes["box"].Ports) != PortsFileFrom {
		t.Errorf("ReadChanged: %v", err)
	}
	// Few again: back in the record, the file gone.
	few := got.Clone()
	few.Sandboxes["box"].Ports = few.Sandboxes["box"].Ports[:2]
	write(got, few)
	if _, err := os.Stat(ports); !os.IsNotExist(err) {
		t.Errorf("the ports file outlived its ports: %v", err)
	}
	// Many, then the sandbox removed: both files go.
	write(few, got)
	gone := got.Clone()
	delete(gone.Sandboxes, "box")
	write(got, gone)
	for _, f := range []string{ports, s.SandboxFile("box")} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s outlived its sandbox", f)
		}
	}
	// A missing ports file is a corrupt record, named.
	write(gone, got)
	os.Remove(ports)
	if _, err := s.Load(); err == nil || !strings.Contains(err.Error(), "box.json") {
		t.Errorf("a missing ports file: %v", err)
	}
}

// A ports file writes a run of one-port-on mappings as one line, and
// reads back every mapping of it.
func TestPortsFileRuns(t *testing.T) {
	var l PortList
	for i := 0; i < 1000; i++ {
		l = append(l, Port{HostPort: 20000 + i, HostPortEnd: 20000 + i, Port: 20000 + i, PortEnd: 20000 + i, Proto: "tcp"})
	}
	l = append(l, Port{HostPort: 30000, HostPortEnd: 30009, Port: 30000, PortEnd: 30009, Proto: "udp"},
		Port{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, HostPortEnd: 8080, Port: 80, PortEnd: 80, Proto: "tcp"},
		Port{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8081, HostPortEnd: 8081, Port: 81, PortEnd: 81, Proto: "tcp"})
	text := portsText(l)
	if want := "20000->20000/tcp *1000\n30000-30009->30000-30009/udp\n127.0.0.1:8080->80/tcp *2\n"; text != want {
		t.Errorf("ports file:\n%s\nwant:\n%s", text, want)
	}
	back, err := parsePortsText([]byte(text))
	if err != nil || !slices.Equal(back, l) {
		for i := range min(len(back), len(l)) {
			if back[i] != l[i] {
				t.Errorf("mapping %d read back as %v, want %v", i, back[i], l[i])
				break
			}
		}
		t.Errorf("read back %d mappings (%v), want %d", len(back), err, len(l))
	}
	for _, bad := range []string{"20000->20000/tcp *0\n", "20000->20000/tcp *x\n", "65000->65000/tcp *1000\n", "8000-8001->80-81/tcp *2\n"} {
		if _, err := parsePortsText([]byte(bad)); err == nil {
			t.Errorf("%q read without error", bad)
		}
	}
}
