// Package format renders rows through Go templates the way Docker's
// --format takes them (table directives, json, join, upper, lower, ...),
// and parses Docker's --filter KEY=VALUE lists.
package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode"
)

// funcs are the template functions Docker's CLI offers.
var funcs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(b.String()), nil
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		r := []rune(s)
		if len(r) > 0 {
			r[0] = unicode.ToUpper(r[0])
		}
		return string(r)
	},
	"truncate": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n])
		}
		return s
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"println": func(a ...any) string { return fmt.Sprintln(a...) },
}

// Template is a parsed --format value.
type Template struct {
	t     *template.Template
	table bool
}

// Parse reads a --format value: a Go template, optionally after the
// "table" directive (a header row, columns aligned), or "json" for one
// JSON object a row.
func Parse(text string) (*Template, error) {
	table := false
	switch {
	case text == "json":
		text = "{{json .}}"
	case text == "table":
		return nil, fmt.Errorf("template parsing error: \"table\" needs a template after it, such as 'table {{.Name}}'")
	case strings.HasPrefix(text, "table "):
		table, text = true, strings.TrimPrefix(text, "table ")
	}
	// Docker's CLI takes \t and \n written out.
	text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(text)
	t, err := template.New("format").Funcs(funcs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %v", err)
	}
	return &Template{t: t, table: table}, nil
}

// Write renders every row; header names the columns of a table (each
// field's header, executed through the same template).
func (t *Template) Write(w io.Writer, rows []any, header map[string]string) error {
	out := w
	var tw *tabwriter.Writer
	if t.table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		var b bytes.Buffer
		if err := t.t.Execute(&b, header); err == nil {
			fmt.Fprintln(out, b.String())
		}
	}
	for _, r := range rows {
		var b bytes.Buffer
		if err := t.t.Execute(&b, r); err != nil {
			return fmt.Errorf("template: %v", err)
		}
		fmt.Fprintln(out, b.String())
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// Generic turns a value into what JSON decodes it to (maps, slices,
// strings, numbers), so a template reads it by its JSON field names, as
// docker inspect -f does.
func Generic(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var g any
	err = json.Unmarshal(b, &g)
	return g, err
}

// Filters are --filter KEY=VALUE pairs: values of one key are
// alternatives, different keys must all match, as on Docker.
type Filters map[string][]string

// ParseFilters reads --filter values, accepting only the given keys.
func ParseFilters(raw []string, keys ...string) (Filters, error) {
	f := Filters{}
	for _, r := range raw {
		k, v, ok := strings.Cut(r, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", r)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		known := false
		for _, want := range keys {
			known = known || want == k
		}
		if !known {
			sort.Strings(keys)
			return nil, fmt.Errorf("invalid filter '%s' (filters are %s)", k, strings.Join(keys, ", "))
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// Match reports whether a row passes the values given for key; match
// tests one value. A key without values passes everything.
func (f Filters) Match(key string, match func(string) bool) bool {
	vals, ok := f[key]
	if !ok {
		return true
	}
	for _, v := range vals {
		if match(v) {
			return true
		}
	}
	return false
}

// Labels matches a label filter value ("key" or "key=value").
func Labels(labels map[string]string, want string) bool {
	k, v, hasValue := strings.Cut(want, "=")
	got, ok := labels[k]
	return ok && (!hasValue || got == v)
}
