// Package resolver is the host's one long-running process (minidocker-netd).
// It is the embedded DNS, which answers at 127.0.0.11 in every sandbox on a
// user-defined network, as dockerd does (sockets opened inside each
// sandbox's namespace, on the port the sandbox's nat rules map port 53
// to). It knows names from the records, which a command that changed them
// asks it to read again before it returns, and forwards what it does not
// know to the host's nameservers from the host's namespace, over the
// transport the client used. On a host in a cluster it also runs the
// cluster agent (cluster/etcd), adds the other hosts' endpoints to the
// names, and serves the commands' reads and writes of the cluster store.
package resolver

import (
	"bufio"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/minidocker-net/minidocker-net/cluster"
	"github.com/minidocker-net/minidocker-net/cluster/etcd"
	"github.com/minidocker-net/minidocker-net/etcfiles"
	"github.com/minidocker-net/minidocker-net/hostd"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/store"
)

// TTL is Docker's for every answer it gives itself.
const TTL = 600

func socketPath(p store.Paths) string { return p.ResolverSocket() }
func pidPath(p store.Paths) string    { return p.ResolverPid() }

// served is one sandbox's pair of listeners.
type served struct {
	inode uint64
	port  int
	udp   *net.UDPConn
	tcp   *dns.Server
}

func (s *served) close() {
	_ = s.udp.Close()
	_ = s.tcp.Shutdown()
}

// records are what the resolver answers from: the state as last read and
// its names, indexed once per change.
type records struct {
	state *store.State
	names *model.Names
}

type resolver struct {
	paths    store.Paths
	records  atomic.Pointer[records]
	upstream atomic.Pointer[[]string] // the host's nameservers
	mu       sync.Mutex
	served   map[string]*served
	inflight chan struct{} // at most this many forwards at once, as Docker's 1024
	// agent is the cluster agent, while the host is in a cluster (under
	// mu); it signals renames when other hosts' endpoints changed.
	agent   *etcd.Agent
	renames chan struct{}
	// store is the connection commands read and write the cluster store
	// through (under mu; dialed on first need, again when the host joins
	// another cluster).
	store *etcd.Client
}

// Run is the resolver process: it serves until told to stop (a "stop" on
// its socket, or SIGTERM).
func Run(paths store.Paths) error {
	r := &resolver{paths: paths, served: map[string]*served{}, inflight: make(chan struct{}, 1024), renames: make(chan struct{}, 1)}
	go func() {
		for range r.renames {
			r.renamed()
		}
	}()
	if err := os.WriteFile(pidPath(paths), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("resolver: %w", err)
	}
	// Every record is read before the socket answers: whoever started the
	// resolver waits for the socket.
	if err := r.reload(nil); err != nil {
		log.Printf("first load: %v", err)
	}
	_ = os.Remove(socketPath(paths))
	l, err := net.Listen("unix", socketPath(paths))
	if err != nil {
		return fmt.Errorf("resolver: %w", err)
	}
	done := make(chan struct{})
	var once sync.Once
	quit := func() { once.Do(func() { close(done) }) }
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP)
	go func() { <-sigs; quit() }()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go r.control(c, quit)
		}
	}()
	<-done
	l.Close()
	r.mu.Lock()
	for _, s := range r.served {
		s.close()
	}
	if r.agent != nil {
		// Stopped (reset, or the host left): its lease goes, and with it
		// the host's keys.
		r.agent.Stop(true)
	}
	r.mu.Unlock()
	_ = os.Remove(socketPath(paths))
	_ = os.Remove(pidPath(paths))
	return nil
}

// control answers one connection of the socket: "sync FILE..." reads
// those record files again ("sync" alone: every record) and opens or
// closes sandboxes' servers; "stop" ends the process.
func (r *resolver) control(c net.Conn, quit func()) {
	defer c.Close()
	var in io.Reader = c
	if uc, ok := c.(*net.UnixConn); ok {
		in = &rightsReader{c: uc}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\x00")
		switch f[0] {
		case "sync":
			if err := r.reload(f[1:]); err != nil {
				fmt.Fprintf(c, "error %v\n", err)
				continue
			}
			fmt.Fprintln(c, "ok")
		case cluster.LeaseLine:
			r.mu.Lock()
			a := r.agent
			r.mu.Unlock()
			if a == nil {
				fmt.Fprintln(c, "error this host is in no cluster")
				continue
			}
			id, err := a.Lease()
			if err != nil {
				fmt.Fprintf(c, "error %v\n", err)
				continue
			}
			fmt.Fprintf(c, "ok %x\n", id)
		case "stop":
			fmt.Fprintln(c, "ok")
			quit()
			return
		case hostd.KeepLine:
			fmt.Fprintln(c, "ok") // the files came with the line, and are held
		case hostd.StoreLine:
			reply, err := r.storeRequest(f[1:])
			if err != nil {
				fmt.Fprintln(c, hostd.ErrorLine(err))
				continue
			}
			fmt.Fprintln(c, "ok "+reply)
		default:
			fmt.Fprintln(c, "error unknown request")
		}
	}
}

// reload reads the records (those files, or all) and the host's
// nameservers, and serves every sandbox the records say it serves.
func (r *resolver) reload(files []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var st, prev *store.State
	if cur := r.records.Load(); cur != nil && len(files) > 0 {
		// Records are never changed once read: the new state shares the
		// unchanged ones, which then need no second look below.
		prev = cur.state
		st = store.NewState()
		maps.Copy(st.Networks, prev.Networks)
		maps.Copy(st.Sandboxes, prev.Sandboxes)
		st.Host = prev.Host
		if err := store.ReadChanged(r.paths, st, files); err != nil {
			return err
		}
	} else {
		var err error
		if st, err = store.ReadState(r.paths); err != nil {
			return err
		}
	}
	var errs []error
	if err := r.cluster(st); err != nil {
		errs = append(errs, err)
	}
	r.records.Store(&records{state: st, names: r.names(st)})
	up := upstreams()
	r.upstream.Store(&up)
	netsSame := prev != nil && maps.Equal(prev.Networks, st.Networks)
	for name, sv := range r.served {
		sb := st.Sandboxes[name]
		if netsSame && sb != nil && sb == prev.Sandboxes[name] {
			continue // its record and networks are as they were
		}
		ino, _ := nsnet.Inode(name)
		if sb == nil || !model.DNSServed(st, sb) || ino != sv.inode || model.DNSPort(sb) != sv.port {
			sv.close()
			delete(r.served, name)
		}
	}
	for _, name := range st.SandboxNames() {
		sb := st.Sandboxes[name]
		if r.served[name] != nil || !model.DNSServed(st, sb) || !nsnet.Exists(name) {
			continue
		}
		sv, err := r.serve(sb)
		if err != nil {
			errs = append(errs, fmt.Errorf("sandbox %s: %w", name, err))
			continue
		}
		r.served[name] = sv
	}
	return errors.Join(errs...)
}

func (r *resolver) serve(sb *store.Sandbox) (*served, error) {
	ino, err := nsnet.Inode(sb.Name)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(model.ResolverIP.String(), strconv.Itoa(model.DNSPort(sb)))
	var pc net.PacketConn
	var ln net.Listener
	err = nsnet.Within(nsnet.Path(sb.Name), func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", addr); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp4", addr); err != nil {
			pc.Close()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in its namespace: %w", addr, err)
	}
	name := sb.Name
	// TCP, rare and one connection at a time per client, is miekg/dns's
	// server; UDP is served by serveUDP.
	h := dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		if r.answer(w, m, name) {
			r.forward(w, m, nil, name)
		}
	})
	sv := &served{inode: ino, port: model.DNSPort(sb), udp: pc.(*net.UDPConn), tcp: &dns.Server{Listener: ln, Handler: h}}
	go r.serveUDP(sv.udp, name)
	go func() { _ = sv.tcp.ActivateAndServe() }()
	return sv, nil
}

// upstreams are the host's nameservers (at most three, as Docker's),
// dialed from the host's namespace: loopback ones included.
func upstreams() []string {
	b, err := os.ReadFile(etcfiles.HostResolvConf())
	if err != nil {
		return nil
	}
	var out []string
	for _, ns := range etcfiles.Nameservers(b) {
		if a, err := netip.ParseAddr(ns); err == nil && len(out) < 3 {
			out = append(out, net.JoinHostPort(a.String(), "53"))
		}
	}
	return out
}

// answer serves one query from a sandbox with what the records say, and
// reports whether it is not theirs to answer: it is to be forwarded.
func (r *resolver) answer(w dns.ResponseWriter, req *dns.Msg, name string) (forward bool) {
	rec := r.records.Load()
	st := rec.state
	sb := st.Sandboxes[name]
	if sb == nil || len(req.Question) == 0 {
		r.fail(w, req, dns.RcodeRefused)
		return false
	}
	q := req.Question[0]
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeMX:
		addrs, known := rec.names.Lookup(st, sb, q.Name)
		if !known {
			break
		}
		if q.Qtype != dns.TypeMX { // a known name has no mail exchanger: NOERROR, no answer
			rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
			for _, a := range addrs {
				hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: TTL}
				switch {
				case q.Qtype == dns.TypeA && a.Is4():
					hdr.Rrtype = dns.TypeA
					resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
				case q.Qtype == dns.TypeAAAA && a.Is6():
					hdr.Rrtype = dns.TypeAAAA
					resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
				}
			}
		}
		r.reply(w, req, resp)
		return false
	case dns.TypePTR:
		if a, ok := reverseAddr(q.Name); ok {
			if target, found := rec.names.Reverse(st, sb, a); found {
				resp.Answer = append(resp.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: TTL}, Ptr: dns.Fqdn(target)})
				r.reply(w, req, resp)
				return false
			}
		}
	}
	return true
}

// reply writes a locally made answer, truncated to what the client can
// take: 512 bytes over UDP (or its EDNS size), 64 KiB over TCP.
func (r *resolver) reply(w dns.ResponseWriter, req, resp *dns.Msg) {
	size := dns.MaxMsgSize
	if w.LocalAddr().Network() == "udp" {
		size = dns.MinMsgSize
		if o := req.IsEdns0(); o != nil && int(o.UDPSize()) > size {
			size = int(o.UDPSize())
		}
	}
	resp.Truncate(size)
	if err := w.WriteMsg(resp); err != nil {
		log.Printf("reply: %v", err)
	}
}

func (r *resolver) fail(w dns.ResponseWriter, req *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	_ = w.WriteMsg(m)
}

// forward asks the sandbox's --dns servers (dialed inside its namespace)
// or the host's (dialed from the host's), over the client's transport;
// SERVFAIL and REFUSED move on to the next, as Docker's; none answering
// is SERVFAIL. A sandbox without external access gets no host servers.
// A UDP query's bytes (raw) are sent on as they came and the answer's
// returned as they come: nothing to unpack and pack again.
func (r *resolver) forward(w dns.ResponseWriter, req *dns.Msg, raw []byte, name string) {
	st := r.records.Load().state
	sb := st.Sandboxes[name]
	if sb == nil {
		r.fail(w, req, dns.RcodeRefused)
		return
	}
	transport := w.LocalAddr().Network()
	var servers []string
	inside := len(sb.DNS) > 0
	if inside {
		for _, s := range sb.DNS {
			servers = append(servers, net.JoinHostPort(s, "53"))
		}
	} else if model.ExternalAccess(st, sb) {
		if up := r.upstream.Load(); up != nil {
			servers = *up
		}
	}
	select {
	case r.inflight <- struct{}{}:
	default: // all taken: wait for one, but not for ever (no timer otherwise)
		select {
		case r.inflight <- struct{}{}:
		case <-time.After(4 * time.Second):
			r.fail(w, req, dns.RcodeRefused)
			return
		}
	}
	defer func() { <-r.inflight }()
	// A UDP answer is at most what the query allowed (512 bytes, or its
	// EDNS size).
	size := dns.MinMsgSize
	if o := req.IsEdns0(); o != nil && int(o.UDPSize()) > size {
		size = int(o.UDPSize())
	}
	for _, server := range servers {
		if raw != nil {
			resp, err := exchangeUDP(raw, size, server, sb.Name, inside)
			if err != nil || moveOn(int(resp[3]&0x0F)) {
				continue
			}
			if _, err := w.Write(resp); err != nil {
				log.Printf("forward reply: %v", err)
			}
			return
		}
		resp, err := exchange(req, transport, server, sb.Name, inside, size)
		if err != nil || moveOn(resp.Rcode) {
			continue
		}
		resp.Compress = true
		if err := w.WriteMsg(resp); err != nil {
			log.Printf("forward reply: %v", err)
		}
		return
	}
	r.fail(w, req, dns.RcodeServerFailure)
}

// moveOn says whether an upstream's answer sends the query on to the next
// server: SERVFAIL and REFUSED, as Docker's.
func moveOn(rcode int) bool { return rcode == dns.RcodeServerFailure || rcode == dns.RcodeRefused }

// exchange sends one query to a server, with a fresh connection (4 s to
// dial, 4 s to answer), from the sandbox's namespace when inside; size
// is the largest UDP answer the client takes.
func exchange(req *dns.Msg, transport, server, sandbox string, inside bool, size int) (*dns.Msg, error) {
	conn, err := dial(transport, server, sandbox, inside)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := &dns.Client{Net: transport, Timeout: 4 * time.Second, UDPSize: uint16(size)}
	resp, _, err := c.ExchangeWithConn(req, &dns.Conn{Conn: conn, UDPSize: uint16(size)})
	return resp, err
}

// reverseAddr reads an in-addr.arpa or ip6.arpa name.
func reverseAddr(name string) (netip.Addr, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if v4, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		p := strings.Split(v4, ".")
		if len(p) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(p[3] + "." + p[2] + "." + p[1] + "." + p[0])
		return a, err == nil
	}
	if v6, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		p := strings.Split(v6, ".")
		if len(p) != 32 {
			return netip.Addr{}, false
		}
		var b strings.Builder
		for i := len(p) - 1; i >= 0; i-- {
			b.WriteString(p[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		a, err := netip.ParseAddr(b.String())
		return a, err == nil
	}
	return netip.Addr{}, false
}

// cluster starts, stops or updates the cluster agent as the host's
// remembered configuration says (under mu).
func (r *resolver) cluster(st *store.State) error {
	cfg, ok, err := cluster.Load(r.paths)
	if err != nil {
		return err
	}
	if r.agent != nil && (!ok || r.agent.Config() != cfg) {
		r.agent.Stop(!ok) // the host left: its keys go at once
		r.agent = nil
	}
	if r.store != nil && (!ok || r.store.Config() != cfg) {
		r.store.Close()
		r.store = nil
	}
	if !ok {
		return nil
	}
	if r.agent == nil {
		r.agent = etcd.StartAgent(cfg, st, func() {
			select {
			case r.renames <- struct{}{}:
			default: // one is pending: it reads the latest
			}
		})
	}
	return r.agent.Update(st)
}

// renamed rebuilds the names when the other hosts' endpoints changed.
func (r *resolver) renamed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.records.Load(); cur != nil {
		r.records.Store(&records{state: cur.state, names: r.names(cur.state)})
	}
}

// names indexes the names to answer: the records', and on overlay
// networks the other hosts' endpoints, as if they were sandboxes here.
func (r *resolver) names(st *store.State) *model.Names {
	if r.agent == nil {
		return model.NewNames(st)
	}
	remote := r.agent.Remote()
	if len(remote) == 0 {
		return model.NewNames(st)
	}
	all := store.NewState()
	maps.Copy(all.Networks, st.Networks)
	maps.Copy(all.Sandboxes, st.Sandboxes)
	for _, e := range remote {
		// A key no local sandbox can have: names only.
		all.Sandboxes[e.Sandbox+"@"+e.Host] = cluster.RemoteSandbox(e, e.Host)
	}
	return model.NewNames(all)
}

// rightsReader reads a control connection, holding the files that come
// with it (a command's nf_tables socket, hostd.Keep) and closing each a
// second later: by then the kernel has freed what the command's batch
// deleted, and the release does not wait for it, here or in the command.
type rightsReader struct {
	c *net.UnixConn
}

func (r *rightsReader) Read(p []byte) (int, error) {
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := r.c.ReadMsgUnix(p, oob)
	if oobn > 0 {
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for i := range msgs {
			fds, _ := unix.ParseUnixRights(&msgs[i])
			for _, fd := range fds {
				time.AfterFunc(time.Second, func() { _ = unix.Close(fd) })
			}
		}
	}
	return n, err
}
