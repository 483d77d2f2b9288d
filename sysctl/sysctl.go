// Package sysctl reads and writes kernel parameters under /proc/sys of the
// calling thread's network namespace.
package sysctl

import (
	"fmt"
	"os"
	"strings"

	"github.com/minidocker-net/minidocker-net/plan"
)

// Path turns a dotted key (net.ipv4.conf.mdn0.route_localnet) into its file.
// Interface names in keys never contain dots here: bridge names are checked.
func Path(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// Get returns the value of a key without the trailing newline.
func Get(key string) (string, error) {
	b, err := os.ReadFile(Path(key))
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Set writes a value to a key.
func Set(key, value string) error {
	if err := os.WriteFile(Path(key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl -w %s=%s: %w", key, value, err)
	}
	return nil
}

// Step sets Key to Value; undoing writes Old back. A key whose file is gone
// (its interface was deleted) counts as undone.
type Step struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Old   string `json:"old"`
}

func init() { plan.Register("sysctl", func() plan.Step { return &Step{} }) }

// NewStep reads the current value so that undo can restore it. It returns
// nil when the key already holds value.
func NewStep(key, value string) (*Step, error) {
	old, err := Get(key)
	if err != nil {
		return nil, err
	}
	if old == value {
		return nil, nil
	}
	return &Step{Key: key, Value: value, Old: old}, nil
}

func (s *Step) Kind() string { return "sysctl" }

// Satisfied: the key holds the value.
func (s *Step) Satisfied(*plan.Context) (bool, error) {
	v, err := Get(s.Key)
	return err == nil && v == s.Value, nil
}

func (s *Step) Apply(*plan.Context) error { return Set(s.Key, s.Value) }
func (s *Step) Commands() []string        { return []string{"sysctl -w " + s.Key + "=" + s.Value} }
func (s *Step) UndoCommands() []string    { return []string{"sysctl -w " + s.Key + "=" + s.Old} }
func (s *Step) Undo(ctx *plan.Context) error {
	if _, err := os.Stat(Path(s.Key)); os.IsNotExist(err) {
		return nil
	}
	return Set(s.Key, s.Old)
}
