package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Journal records a command in progress: the plan it is applying and the
// state files as they were before. It is written before the first kernel
// change and removed after the new state is written, so a crash at any
// point leaves a journal from which the next command rolls everything back.
type Journal struct {
	Schema  int             `json:"schema"`
	Title   string          `json:"title"`
	Pid     int             `json:"pid"`
	Started time.Time       `json:"started"`
	Steps   json.RawMessage `json:"steps"`
	// Before holds, for every state file the command will change, its
	// content beforehand (nil: it did not exist).
	Before []FileChange `json:"before"`
}

// WriteJournal stores the journal atomically, without syncing it: it
// describes kernel changes, which a power loss undoes by itself.
func (s *Store) WriteJournal(j *Journal) error {
	j.Schema = Schema
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode journal: %w", err)
	}
	return replaceFile(s.JournalFile(), b, 0o600, false)
}

// ReadJournal returns the pending journal, or nil when there is none.
func (s *Store) ReadJournal() (*Journal, error) {
	data, err := os.ReadFile(s.JournalFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	j := &Journal{}
	if err := json.Unmarshal(data, j); err != nil {
		return nil, &CorruptError{Path: s.JournalFile(), Err: err}
	}
	if !readable(j.Schema) {
		return nil, &CorruptError{Path: s.JournalFile(), Err: fmt.Errorf("schema version %d, this minidocker-net reads 1 to %d", j.Schema, Schema)}
	}
	return j, nil
}

// RemoveJournal marks the command as finished.
func (s *Store) RemoveJournal() error {
	if err := os.Remove(s.JournalFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove journal: %w", err)
	}
	return nil
}

// BeforeImages reads the current content of the files about to change.
func BeforeImages(changes []FileChange) ([]FileChange, error) {
	out := make([]FileChange, 0, len(changes))
	for _, c := range changes {
		data, err := os.ReadFile(c.Path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			out = append(out, FileChange{Path: c.Path})
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", c.Path, err)
		default:
			d := string(data)
			out = append(out, FileChange{Path: c.Path, Data: &d})
		}
	}
	return out, nil
}
