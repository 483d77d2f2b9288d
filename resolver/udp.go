package resolver

import (
	"encoding/binary"
	"errors"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/minidocker-net/minidocker-net/nsnet"
)

// udpBuf is what a query is read into and a local answer packed into:
// queries are a few dozen bytes, and an answer bigger than this (an EDNS
// client, a large alias) just gets a buffer of its own.
const udpBuf = 4096

// serveUDP answers one sandbox's UDP queries on the goroutine that reads
// them, from two buffers it keeps: a local answer costs no goroutine, no
// hand-off between threads and little garbage, which is what keeps the
// tail latency low. Only a forward, which waits on another server, gets a
// goroutine of its own, with the query's bytes, sent on as they came.
func (r *resolver) serveUDP(pc *net.UDPConn, name string) {
	in := make([]byte, udpBuf)
	w := &udpWriter{conn: pc, buf: make([]byte, udpBuf)}
	for {
		n, from, err := pc.ReadFromUDPAddrPort(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Printf("sandbox %s: read: %v", name, err)
			time.Sleep(10 * time.Millisecond) // not a busy loop on a lasting error
			continue
		}
		w.to = from
		req := accept(w, in[:n])
		if req == nil || !r.answer(w, req, name) {
			continue
		}
		raw := append([]byte(nil), in[:n]...)
		go r.forward(&udpWriter{conn: pc, to: from}, req, raw, name)
	}
}

// accept reads a query as miekg/dns's server does: a reply or garbage
// shorter than a header is ignored (an answer could amplify an attack),
// what its default accept function rejects gets FORMERR or NOTIMP.
func accept(w dns.ResponseWriter, m []byte) *dns.Msg {
	const headerSize = 12
	if len(m) < headerSize {
		return nil
	}
	h := dns.Header{Id: binary.BigEndian.Uint16(m), Bits: binary.BigEndian.Uint16(m[2:]),
		Qdcount: binary.BigEndian.Uint16(m[4:]), Ancount: binary.BigEndian.Uint16(m[6:]),
		Nscount: binary.BigEndian.Uint16(m[8:]), Arcount: binary.BigEndian.Uint16(m[10:])}
	action := dns.DefaultMsgAcceptFunc(h)
	if action == dns.MsgIgnore {
		return nil
	}
	req := new(dns.Msg)
	if action == dns.MsgAccept {
		if err := req.Unpack(m); err == nil {
			return req
		}
	}
	resp := new(dns.Msg)
	resp.Id, resp.Response, resp.Rcode = h.Id, true, dns.RcodeFormatError
	resp.Opcode = int(h.Bits>>11) & 0xF
	if resp.Opcode == dns.OpcodeQuery {
		resp.RecursionDesired, resp.CheckingDisabled = h.Bits&(1<<8) != 0, h.Bits&(1<<4) != 0
	}
	if action == dns.MsgRejectNotImplemented {
		resp.Rcode = dns.RcodeNotImplemented
	}
	_ = w.WriteMsg(resp)
	return nil
}

// udpWriter answers one UDP client; the socket is bound to 127.0.0.11,
// so the answer leaves from the address the query was sent to.
type udpWriter struct {
	conn *net.UDPConn
	to   netip.AddrPort
	buf  []byte // packing space, reused; nil: allocate
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.to) }
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.PackBuffer(w.buf)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.WriteToUDPAddrPort(b, w.to) }
func (w *udpWriter) Close() error                { return nil }
func (w *udpWriter) TsigStatus() error           { return nil }
func (w *udpWriter) TsigTimersOnly(bool)         {}
func (w *udpWriter) Hijack()                     {}

// exchangeUDP sends a UDP query's bytes as they came to a server and
// returns its answer's bytes (at most size of them, what the client can
// take), from the sandbox's namespace when inside.
func exchangeUDP(raw []byte, size int, server, sandbox string, inside bool) ([]byte, error) {
	conn, err := dial("udp", server, sandbox, inside)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(4 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		return nil, err
	}
	resp := make([]byte, size)
	for {
		n, err := conn.Read(resp)
		if err != nil {
			return nil, err
		}
		// The answer to this query (its ID, the reply bit): anything else
		// on the socket is ignored, as a stub resolver does.
		if n >= 12 && resp[0] == raw[0] && resp[1] == raw[1] && resp[2]&0x80 != 0 {
			return resp[:n], nil
		}
	}
}

// dial connects to a server for one query, from the sandbox's namespace
// when inside.
func dial(transport, server, sandbox string, inside bool) (net.Conn, error) {
	if !inside {
		return net.DialTimeout(transport, server, 4*time.Second)
	}
	var conn net.Conn
	err := nsnet.Within(nsnet.Path(sandbox), func() error {
		var err error
		conn, err = net.DialTimeout(transport, server, 4*time.Second)
		return err
	})
	return conn, err
}
