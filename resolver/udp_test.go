package resolver

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// written is a ResponseWriter that keeps what was written.
type written struct {
	dns.ResponseWriter
	msgs []*dns.Msg
}

func (w *written) WriteMsg(m *dns.Msg) error { w.msgs = append(w.msgs, m); return nil }
func (w *written) LocalAddr() net.Addr       { return &net.UDPAddr{} }

func pack(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAcceptAsMiekgServer: the UDP loop takes, ignores and rejects
// queries as miekg/dns's server did before it.
func TestAcceptAsMiekgServer(t *testing.T) {
	query := new(dns.Msg).SetQuestion("apple-server.", dns.TypeA)
	reply := new(dns.Msg).SetReply(query)
	two := new(dns.Msg).SetQuestion("a.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	update := new(dns.Msg).SetUpdate("example.")
	garbage := pack(t, query)
	garbage = garbage[:len(garbage)-3] // the question cut short

	for _, c := range []struct {
		what   string
		in     []byte
		take   bool
		rcode  int // of the one answer written; -1: none
		opcode int
	}{
		{"a query", pack(t, query), true, -1, 0},
		{"a reply (could amplify)", pack(t, reply), false, -1, 0},
		{"shorter than a header", []byte{1, 2, 3}, false, -1, 0},
		{"two questions", pack(t, two), false, dns.RcodeFormatError, dns.OpcodeQuery},
		{"an UPDATE", pack(t, update), false, dns.RcodeNotImplemented, dns.OpcodeUpdate},
		{"a question cut short", garbage, false, dns.RcodeFormatError, dns.OpcodeQuery},
	} {
		w := &written{}
		req := accept(w, c.in)
		if (req != nil) != c.take {
			t.Errorf("%s: taken %v, want %v", c.what, req != nil, c.take)
		}
		if req != nil && req.Question[0].Name != "apple-server." {
			t.Errorf("%s: read %v", c.what, req.Question)
		}
		switch {
		case c.rcode < 0 && len(w.msgs) > 0:
			t.Errorf("%s: answered %v", c.what, w.msgs[0])
		case c.rcode >= 0 && len(w.msgs) != 1:
			t.Errorf("%s: %d answers, want one", c.what, len(w.msgs))
		case c.rcode >= 0:
			m := w.msgs[0]
			if m.Rcode != c.rcode || m.Opcode != c.opcode || !m.Response || m.Id != uint16(c.in[0])<<8|uint16(c.in[1]) {
				t.Errorf("%s: answered %v", c.what, m)
			}
		}
	}
}
