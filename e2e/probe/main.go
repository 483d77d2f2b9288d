// Command probe sends and answers test packets for the end-to-end tests.
//
//	probe serve tcp|udp [ADDR:]PORT  answer every message with "TOKEN from SRC"
//	probe send tcp|udp HOST:PORT TOKEN [SRCPORT]
//	                                 (IPv6: [ADDR]:PORT, [::]:PORT)
//	probe serve dns ADDR:PORT        a nameserver: NAME.test is 192.0.2.99
//	                                 (TXT: the transport asked on), the
//	                                 rest NXDOMAIN; UDP and TCP
//	probe serve dns-refusing ADDR:PORT  a nameserver that REFUSES everything
//
// The reply is "TOKEN from SRC at HOSTNAME": which address the server saw,
// and which server (sandbox) answered.
// send prints the reply and exits 0 only if one arrived within a second,
// so a test asserts on a packet that made the round trip, and the reply
// says which source address the server saw (masquerading shows there).
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: probe serve PROTO PORT | probe send PROTO HOST:PORT TOKEN")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		if os.Args[2] == "dns" || os.Args[2] == "dns-refusing" {
			err = serveDNS(os.Args[3], os.Args[2] == "dns-refusing")
			break
		}
		err = serve(os.Args[2], os.Args[3])
	case "send":
		if len(os.Args) < 5 {
			err = fmt.Errorf("send needs a token")
			break
		}
		src := ""
		if len(os.Args) > 5 {
			src = os.Args[5]
		}
		err = send(os.Args[2], os.Args[3], os.Args[4], src)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// family is the network a probe uses for an address: IPv4 unless the
// address is written [IPv6]:PORT.
func family(proto, addr string) string {
	if strings.HasPrefix(addr, "[") {
		return proto + "6"
	}
	return proto + "4"
}

func serve(proto, addr string) error {
	host, _ := os.Hostname()
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	if proto == "udp" {
		// Bind the service address when given: a UDP reply from an
		// unbound socket takes the route's source address, which a client
		// on a multi-homed server does not accept.
		c, err := net.ListenPacket(family("udp", addr), addr)
		if err != nil {
			return err
		}
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return err
			}
			msg := strings.TrimSpace(string(buf[:n]))
			fmt.Printf("%s from %s at %s\n", msg, from, host)
			_, _ = c.WriteTo([]byte(msg+" from "+from.String()+" at "+host+"\n"), from)
		}
	}
	l, err := net.Listen(family("tcp", addr), addr)
	if err != nil {
		return err
	}
	for {
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		go func(c net.Conn) {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			msg := strings.TrimSpace(line)
			fmt.Printf("%s from %s at %s\n", msg, c.RemoteAddr(), host)
			fmt.Fprintf(c, "%s from %s at %s\n", msg, c.RemoteAddr(), host)
		}(conn)
	}
}

func send(proto, addr, token, srcPort string) error {
	d := net.Dialer{Timeout: time.Second}
	if srcPort != "" {
		var err error
		if proto == "udp" {
			d.LocalAddr, err = net.ResolveUDPAddr(family("udp", addr), ":"+srcPort)
		} else {
			d.LocalAddr, err = net.ResolveTCPAddr(family("tcp", addr), ":"+srcPort)
		}
		if err != nil {
			return err
		}
	}
	c, err := d.Dial(family(proto, addr), addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprintln(c, token); err != nil {
		return err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no reply: %w", err)
	}
	if !strings.HasPrefix(reply, token+" ") {
		return fmt.Errorf("unexpected reply %q", reply)
	}
	fmt.Print(reply)
	return nil
}

// serveDNS is the "internet's" nameserver of the forwarding tests; a
// refusing one answers REFUSED to everything.
func serveDNS(addr string, refusing bool) error {
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		if refusing {
			m.SetRcode(req, dns.RcodeRefused)
			_ = w.WriteMsg(m)
			return
		}
		if !strings.HasSuffix(strings.ToLower(q.Name), ".test.") {
			m.SetRcode(req, dns.RcodeNameError)
			_ = w.WriteMsg(m)
			return
		}
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 60, Rrtype: q.Qtype}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP("192.0.2.99")})
		case dns.TypeTXT:
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{"via " + w.LocalAddr().Network()}})
		}
		_ = w.WriteMsg(m)
	})
	errc := make(chan error, 2)
	for _, n := range []string{"udp", "tcp"} {
		go func(n string) { errc <- (&dns.Server{Addr: addr, Net: n, Handler: h}).ListenAndServe() }(n)
	}
	return <-errc
}
