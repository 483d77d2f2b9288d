package store

import (
	"bytes"
	"encoding/json"
	"testing"
)

func BenchmarkLoadSandbox10000Ports(b *testing.B) {
	sb := &Sandbox{Name: "many"}
	for i := 0; i < 10000; i++ {
		sb.Ports = append(sb.Ports, Port{HostPort: 20000 + i, HostPortEnd: 20000 + i, Port: 20000 + i, PortEnd: 20000 + i, Proto: "tcp"})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as the store writes records
	enc.SetIndent("", "  ")
	if err := enc.Encode(sb); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		var out Sandbox
		if err := json.Unmarshal(data, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadPortsFile10000(b *testing.B) {
	var l PortList
	for i := 0; i < 10000; i++ {
		l = append(l, Port{HostPort: 20000 + i, HostPortEnd: 20000 + i, Port: 20000 + i, PortEnd: 20000 + i, Proto: "tcp"})
	}
	data := []byte(portsText(l))
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := parsePortsText(data); err != nil {
			b.Fatal(err)
		}
	}
}
