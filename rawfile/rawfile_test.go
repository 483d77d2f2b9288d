package rawfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func inode(t *testing.T, path string) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// Rewrite keeps the inode (a sandbox's /etc/hosts is a bind mount of the
// file), returns what the file held and truncates longer old content.
func TestRewriteInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	prev, existed, err := Rewrite(path, []byte("a long first content\n"), true)
	if err != nil || existed || prev != nil {
		t.Fatalf("new file: prev %q, existed %v, err %v", prev, existed, err)
	}
	ino := inode(t, path)
	big := strings.Repeat("x", 70000) // over one read
	if _, _, err := Rewrite(path, []byte(big), false); err != nil {
		t.Fatal(err)
	}
	prev, existed, err = Rewrite(path, []byte("short\n"), true)
	if err != nil || !existed || string(prev) != big {
		t.Fatalf("existing file: %d bytes back (want %d), existed %v, err %v", len(prev), len(big), existed, err)
	}
	if got, _ := os.ReadFile(path); string(got) != "short\n" {
		t.Errorf("file holds %q", got)
	}
	if inode(t, path) != ino {
		t.Error("the file was replaced, not rewritten in place")
	}
	if _, _, err := Rewrite(filepath.Join(path, "x"), nil, true); err == nil || !strings.Contains(err.Error(), "write ") {
		t.Errorf("a path under a file: %v", err)
	}
}

func TestRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "record.json")
	big := strings.Repeat("y", 70000)
	if err := os.WriteFile(path, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(path); err != nil || string(got) != big {
		t.Errorf("read %d bytes, want %d: %v", len(got), len(big), err)
	}
	if _, err := Read(path + ".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}
