package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fake records what happened to it in a shared log.
type fake struct {
	Name    string `json:"name"`
	FailOn  bool   `json:"fail,omitempty"`
	log     *[]string
	applied bool
}

func (f *fake) Kind() string { return "fake" }
func (f *fake) Apply(*Context) error {
	if f.FailOn {
		*f.log = append(*f.log, "fail "+f.Name)
		return errors.New("boom")
	}
	f.applied = true
	*f.log = append(*f.log, "apply "+f.Name)
	return nil
}
func (f *fake) Undo(*Context) error {
	*f.log = append(*f.log, "undo "+f.Name)
	return nil
}
func (f *fake) Commands() []string     { return []string{"make " + f.Name} }
func (f *fake) UndoCommands() []string { return []string{"unmake " + f.Name} }

func init() { Register("fake", func() Step { return &fake{log: &[]string{}} }) }

func steps(log *[]string, names ...string) []Step {
	var out []Step
	for _, n := range names {
		out = append(out, &fake{Name: strings.TrimPrefix(n, "!"), FailOn: strings.HasPrefix(n, "!"), log: log})
	}
	return out
}

func TestApplyRollsBackInReverse(t *testing.T) {
	var log []string
	p := &Plan{Steps: steps(&log, "a", "b", "!c", "d")}
	err := p.Apply(NewContext(nil))
	var se *StepError
	if !errors.As(err, &se) || se.Index != 3 || se.Rollback != nil {
		t.Fatalf("want StepError at step 3 with full rollback, got %v", err)
	}
	want := "apply a,apply b,fail c,undo c,undo b,undo a"
	if got := strings.Join(log, ","); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if !strings.Contains(err.Error(), "step 3 (make c): boom; all changes rolled back") {
		t.Errorf("error text: %v", err)
	}
}

func TestFaultInjectionEveryStep(t *testing.T) {
	for n := 1; n <= 3; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Setenv(FailStepEnv, fmt.Sprint(n))
			var log []string
			p := &Plan{Steps: steps(&log, "a", "b", "c")}
			if err := p.Apply(NewContext(nil)); !errors.Is(err, ErrInjected) {
				t.Fatalf("want injected error, got %v", err)
			}
			applied := 0
			for _, l := range log {
				if strings.HasPrefix(l, "apply") {
					applied++
				}
			}
			if applied != n-1 || strings.Count(strings.Join(log, ","), "undo") != n {
				t.Errorf("step %d: %v", n, log)
			}
		})
	}
}

func TestReversedIsTeardown(t *testing.T) {
	var log []string
	setup := steps(&log, "bridge", "addr", "up")
	down := Reversed(setup)
	var b strings.Builder
	(&Plan{Title: "rm", Steps: down}).Render(&b)
	want := "# rm\n# step 1\nunmake up\n# step 2\nunmake addr\n# step 3\nunmake bridge\n"
	if b.String() != want {
		t.Errorf("render:\n%s\nwant:\n%s", b.String(), want)
	}
	if err := (&Plan{Steps: down}).Apply(NewContext(nil)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(log, ","); got != "undo up,undo addr,undo bridge" {
		t.Errorf("teardown ran %s", got)
	}
	if back := Reversed(down); back[0] != setup[0] {
		t.Errorf("reversing twice should give the setup steps back")
	}
}

func TestJournalRoundTrip(t *testing.T) {
	var log []string
	in := []Step{&fake{Name: "x", log: &log}, Reverse{&fake{Name: "y", log: &log}}}
	data, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].(*fake).Name != "x" || out[1].(Reverse).Inner.(*fake).Name != "y" {
		t.Errorf("round trip: %s -> %#v", data, out)
	}
	if _, err := Unmarshal([]byte(`[{"kind":"nope","step":{}}]`)); err == nil {
		t.Error("an unknown step kind must be an error")
	}
}

type checked struct {
	name        string
	done        bool
	makes, uses string
}

func (s *checked) Kind() string                     { return "checked" }
func (s *checked) Apply(*Context) error             { return nil }
func (s *checked) Undo(*Context) error              { return nil }
func (s *checked) Commands() []string               { return []string{s.name} }
func (s *checked) UndoCommands() []string           { return nil }
func (s *checked) Satisfied(*Context) (bool, error) { return s.done, nil }

type making struct{ checked }

func (s *making) Makes() string { return s.makes }

type using struct{ checked }

func (s *using) Uses() string { return s.uses }

// TestNeededKeepsWhatDependsOnARemake: a repair that makes a link again
// configures it again, though the old one looked configured.
func TestNeededKeepsWhatDependsOnARemake(t *testing.T) {
	steps := []Step{
		&making{checked{name: "veth", done: false, makes: "link:a/eth0"}},
		&using{checked{name: "addr eth0", done: true, uses: "link:a/eth0"}},
		&using{checked{name: "addr eth1", done: true, uses: "link:a/eth1"}},
		&checked{name: "other", done: true},
	}
	var got []string
	for _, s := range Needed(NewContext(nil), steps) {
		got = append(got, s.Commands()[0])
	}
	if strings.Join(got, ",") != "veth,addr eth0" {
		t.Errorf("needed: %v", got)
	}
}
