package format

import (
	"bytes"
	"strings"
	"testing"
)

type row struct{ Name, Driver string }

func (r row) Label(k string) string { return "L" + k }

func TestTemplates(t *testing.T) {
	rows := []any{row{"a", "bridge"}, row{"b", "null"}}
	for text, want := range map[string]string{
		"{{.Name}}":                    "a\nb\n",
		`{{.Name}}\t{{upper .Driver}}`: "a\tBRIDGE\nb\tNULL\n",
		"json":                         "{\"Name\":\"a\",\"Driver\":\"bridge\"}\n{\"Name\":\"b\",\"Driver\":\"null\"}\n",
		`{{.Label "x"}}`:               "Lx\nLx\n",
		"table {{.Name}}":              "NAME\na\nb\n",
	} {
		tm, err := Parse(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		var b bytes.Buffer
		if err := tm.Write(&b, rows, map[string]string{"Name": "NAME"}); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("%q gave %q, want %q", text, b.String(), want)
		}
	}
	if _, err := Parse("{{.Name"); err == nil || !strings.Contains(err.Error(), "template parsing error") {
		t.Errorf("a bad template: %v", err)
	}
}

func TestFilters(t *testing.T) {
	f, err := ParseFilters([]string{"name=a", "name=b", "label=k=v"}, "name", "label")
	if err != nil {
		t.Fatal(err)
	}
	eq := func(want string) func(string) bool { return func(v string) bool { return v == want } }
	if !f.Match("name", eq("b")) || f.Match("name", eq("c")) || !f.Match("other", eq("x")) {
		t.Errorf("values of a key are alternatives; a key not given passes")
	}
	if !Labels(map[string]string{"k": "v"}, "k=v") || Labels(map[string]string{"k": "w"}, "k=v") || !Labels(map[string]string{"k": "w"}, "k") {
		t.Errorf("label matching")
	}
	if _, err := ParseFilters([]string{"colour=red"}, "name"); err == nil {
		t.Errorf("an unknown filter must be refused")
	}
	if _, err := ParseFilters([]string{"novalue"}, "name"); err == nil {
		t.Errorf("a filter without = must be refused")
	}
}
