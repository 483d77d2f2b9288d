package main

import (
	"io"
	"strings"
	"testing"
)

func TestIntersperse(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	for in, want := range map[string]string{
		"mdn network create NAME --subnet 10.0.0.0/24": "mdn network create --subnet 10.0.0.0/24 -- NAME",
		"mdn rm web -f":                                      "mdn rm -f -- web",
		"mdn rm -- -f":                                       "mdn rm -- -f",
		"mdn network inspect n -f {{.Name}}":                 "mdn network inspect -f {{.Name}} -- n",
		"mdn --dry-run network connect n s --alias a":        "mdn --dry-run network connect --alias a -- n s",
		"mdn run --name x -- ping -c1 y":                     "mdn run --name x -- ping -c1 y",
		"mdn exec s ping -c1 y":                              "mdn exec s ping -c1 y",
		"mdn ps --format {{.Names}}":                         "mdn ps --format {{.Names}}",
		"mdn network ls -q --filter name=x":                  "mdn network ls -q --filter name=x",
		"mdn create a --label k=v --internal":                "mdn create --label k=v --internal -- a",
		"mdn --state-dir /tmp/x rm a b -f":                   "mdn --state-dir /tmp/x rm -f -- a b",
		"mdn trace --probe a b:80":                           "mdn trace --probe a b:80",
		"mdn network disconnect n s --help":                  "mdn network disconnect --help -- n s",
		"mdn network create --subnet=10.1.0.0/24 -o icc=0 x": "mdn network create --subnet=10.1.0.0/24 -o icc=0 -- x",
	} {
		if got := strings.Join(intersperse(app, strings.Fields(in)), " "); got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
}
