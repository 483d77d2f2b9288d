package iptables

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minidocker-net/minidocker-net/plan"
)

// fakeRestore stands in for iptables-restore: it appends its input to a
// file, or fails with a message when the input says so.
func fakeRestore(t *testing.T) (log string) {
	dir := t.TempDir()
	log = filepath.Join(dir, "input")
	bin := filepath.Join(dir, "iptables-restore")
	script := "#!/bin/sh\nin=$(cat)\nprintf '%s\\n--\\n' \"$in\" >> " + log + "\ncase $in in *FAIL*) echo 'line 2 failed' >&2; exit 1;; esac\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := IPv4.Restore
	IPv4.Restore = bin
	t.Cleanup(func() { IPv4.Restore = old })
	return log
}

func read(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestPrestartedRestoreTakesTheFirstScriptOnly(t *testing.T) {
	log := fakeRestore(t)
	ctx := plan.NewContext(nil)
	step := &RulesStep{Ops: []TableOp{{Table: "nat", Op: Op{Kind: OpAdd, Chain: "MINIDOCKER", Spec: "-j RETURN"}}}}
	Prestart(ctx, []plan.Step{step})
	r, ok := plan.Lookup[*restorer](ctx, IPv4.key("restorer"))
	if !ok {
		t.Fatal("a plan with a rule change should start iptables-restore ahead")
	}
	if err := restoreIn(ctx, IPv4, "*nat\nfirst\nCOMMIT\n"); err != nil {
		t.Fatal(err)
	}
	if r.cmd.ProcessState == nil || !r.cmd.ProcessState.Success() {
		t.Error("the first script should go to the prestarted iptables-restore")
	}
	if err := restoreIn(ctx, IPv4, "*nat\nFAIL\nCOMMIT\n"); err == nil || !strings.Contains(err.Error(), "line 2 failed") {
		t.Errorf("a second script runs in a process of its own, and its error is reported: %v", err)
	}
	ctx.Close()
	if got := read(t, log); got != "*nat\nfirst\nCOMMIT\n--\n*nat\nFAIL\nCOMMIT\n--\n" {
		t.Errorf("iptables-restore received:\n%s", got)
	}
}

func TestUnusedPrestartedRestoreCommitsNothing(t *testing.T) {
	log := fakeRestore(t)
	ctx := plan.NewContext(nil)
	Prestart(ctx, []plan.Step{&RulesStep{}}) // no ops: nothing to start
	if _, ok := plan.Lookup[*restorer](ctx, IPv4.key("restorer")); ok {
		t.Error("a plan without rule changes should start nothing")
	}
	Prestart(ctx, []plan.Step{&RulesStep{Ops: []TableOp{{Table: "filter", Op: Op{Kind: OpAdd, Chain: "MINIDOCKER-USER", Spec: "-j RETURN"}}}}})
	r, ok := plan.Lookup[*restorer](ctx, IPv4.key("restorer"))
	if !ok {
		t.Fatal("not started")
	}
	ctx.Close() // the plan failed before its rule change
	if r.cmd.ProcessState == nil || !r.cmd.ProcessState.Success() {
		t.Errorf("the unused iptables-restore should have ended on its own and been reaped: %v", r.cmd.ProcessState)
	}
	if got := read(t, log); strings.Contains(got, "*") {
		t.Errorf("an unused iptables-restore received a script:\n%s", got)
	}
}
