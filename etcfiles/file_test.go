package etcfiles

import (
	"os"
	"path/filepath"
	"testing"
)

// Undo puts back exactly what Apply found, or removes what Apply created.
func TestFileUndo(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old")
	if err := os.WriteFile(old, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*File{{Path: old, Content: "after\n"}, {Path: filepath.Join(dir, "new"), Content: "made\n"}} {
		if err := f.Apply(nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(f.Path); string(got) != f.Content {
			t.Errorf("%s after Apply: %q", f.Path, got)
		}
		if err := f.Undo(nil); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.ReadFile(old); string(got) != "before\n" {
		t.Errorf("undo left %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Errorf("undo should remove the file Apply created: %v", err)
	}
}
