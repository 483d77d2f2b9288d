package nft

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"golang.org/x/sys/unix"
)

// host is the command's one connection to the host's nf_tables: every
// read and batch goes through it. A netlink socket's release waits for
// the kernel to free what its batches deleted (an RCU grace period, about
// 10 ms here), so it is not closed by the command: Socket hands it to
// the long-running process, which closes it once that is done.
var host struct {
	sync.Mutex
	c     *nftables.Conn
	nl    *netlink.Conn // its socket, for deadlines
	fd    int           // the socket, -1 before it is opened
	wrote bool
}

func init() { host.fd = -1 }

func hostConn() (*nftables.Conn, error) {
	host.Lock()
	defer host.Unlock()
	if host.c != nil {
		return host.c, nil
	}
	c, err := nftables.New(nftables.AsLasting(), nftables.WithSockOptions(func(nc *netlink.Conn) error {
		raw, err := nc.SyscallConn()
		if err != nil {
			return err
		}
		var serr, rerr error
		err = raw.Control(func(fd uintptr) {
			host.fd = int(fd)
			// A batch is one message: 10,000 published ports are about
			// 2 MB of elements, beyond the default send buffer.
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64<<20)
			rerr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		})
		// The kernel answers each failed message of a batch with an
		// error that, unless capped, carries the whole message back: a
		// batch of deletions that found their elements gone overflowed
		// the receive buffer, and the answer never came.
		cerr := nc.SetOption(netlink.CapAcknowledge, true)
		host.nl = nc
		return errors.Join(err, serr, rerr, cerr)
	}))
	if err != nil {
		return nil, err
	}
	host.c = c
	return c, nil
}

// Socket returns a duplicate of the host connection's socket when a batch
// went through it, for the long-running process to hold (and close) after
// the command exits.
func Socket() (int, bool) {
	host.Lock()
	defer host.Unlock()
	if !host.wrote || host.fd < 0 {
		return -1, false
	}
	fd, err := unix.Dup(host.fd)
	return fd, err == nil
}

// Conn opens a netlink connection to nf_tables: the host's, or, with a
// namespace name, a sandbox's (bound to it by file descriptor, no setns).
func Conn(netns string) (*nftables.Conn, func(), error) {
	if netns == "" {
		c, err := hostConn()
		return c, func() {}, err
	}
	f, err := os.Open(nsnet.Path(netns))
	if err != nil {
		return nil, nil, fmt.Errorf("namespace %s: %w", netns, err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return c, func() { f.Close() }, nil
}

// KRule is one rule the kernel holds, and the rule of ours it is, if any.
type KRule struct {
	Handle uint64
	Rule   *Rule // nil: not one minidocker-net's intent calls for
	key    string
}

// KChain is a chain as the kernel holds it.
type KChain struct {
	Name  string
	Base  *Base
	Rules []KRule
}

// Kernel is one of our tables as the kernel holds it; nil when absent.
type Kernel struct {
	Family Family
	Name   string
	Sets   map[string]*Set // with their elements
	Chains []*KChain
}

func (k *Kernel) chain(name string) *KChain {
	for _, c := range k.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var hooks = map[nftables.ChainHook]string{
	*nftables.ChainHookPrerouting: "prerouting", *nftables.ChainHookInput: "input", *nftables.ChainHookForward: "forward",
	*nftables.ChainHookOutput: "output", *nftables.ChainHookPostrouting: "postrouting",
}

var hookNums = map[string]*nftables.ChainHook{
	"prerouting": nftables.ChainHookPrerouting, "input": nftables.ChainHookInput, "forward": nftables.ChainHookForward,
	"output": nftables.ChainHookOutput, "postrouting": nftables.ChainHookPostrouting,
}

// Read returns the kernel's table of family f and name, with its rules
// matched against want's (nil want: none is known). Elements are read
// too unless skipElems.
func Read(c *nftables.Conn, f Family, name string, want *Table, skipElems bool) (*Kernel, error) {
	t, err := c.ListTableOfFamily(name, f.nft())
	if errors.Is(err, unix.ENOENT) || (err == nil && t == nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nft list table %s %s: %w", f, name, err)
	}
	k := &Kernel{Family: f, Name: name, Sets: map[string]*Set{}}
	sets, err := c.GetSets(t)
	if err != nil {
		return nil, fmt.Errorf("nft list sets %s %s: %w", f, name, err)
	}
	for _, s := range sets {
		st := &Set{Name: s.Name, Key: typeNames(s.KeyType)}
		if s.IsMap {
			st.Data = typeNames(s.DataType)
		}
		if s.KeyType.Name == "verdict" {
			// google/nftables v0.3.0 reads a verdict map's data type into
			// its key type; ours are all keyed by interface name.
			st.Key, st.Data = []string{"ifname"}, []string{"verdict"}
		}
		k.Sets[s.Name] = st
		if skipElems {
			continue
		}
		els, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("nft list set %s %s %s: %w", f, name, s.Name, err)
		}
		for _, el := range els {
			e, err := elemOf(st, el)
			if err != nil {
				return nil, fmt.Errorf("set %s: %w", s.Name, err)
			}
			st.Elems = append(st.Elems, e)
		}
	}
	known := map[string]*Rule{}
	if want != nil {
		for _, ch := range want.Chains {
			for i := range ch.Rules {
				if key, err := ruleKey(f, &ch.Rules[i]); err == nil {
					known[ch.Name+" "+key] = &ch.Rules[i]
				}
			}
		}
	}
	chains, err := c.ListChainsOfTableFamily(f.nft())
	if err != nil {
		return nil, fmt.Errorf("nft list chains %s: %w", f, err)
	}
	for _, ch := range chains {
		if ch.Table.Name != name {
			continue
		}
		kc := &KChain{Name: ch.Name}
		if ch.Hooknum != nil {
			kc.Base = &Base{Type: string(ch.Type), Hook: hooks[*ch.Hooknum], Policy: "accept"}
			if ch.Priority != nil {
				kc.Base.Priority = int(*ch.Priority)
			}
			if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
				kc.Base.Policy = "drop"
			}
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return nil, fmt.Errorf("nft list chain %s %s %s: %w", f, name, ch.Name, err)
		}
		for _, r := range rules {
			key := exprKey(f, r.Exprs, r.UserData)
			kc.Rules = append(kc.Rules, KRule{Handle: r.Handle, Rule: known[ch.Name+" "+key], key: key})
		}
		k.Chains = append(k.Chains, kc)
	}
	return k, nil
}

func typeNames(t nftables.SetDatatype) []string {
	var out []string
	for _, x := range nftables.ConcatSetTypeElements(t) {
		out = append(out, x.Name)
	}
	return out
}

// exprKey identifies a rule by its expressions and comment, as the
// kernel lists them.
func exprKey(f Family, es []expr.Any, udata []byte) string {
	var b bytes.Buffer
	for _, e := range es {
		data, err := expr.Marshal(byte(f.nft()), e)
		if err != nil {
			return "?"
		}
		b.Write(data)
	}
	if c, ok := userdata.GetString(udata, userdata.TypeComment); ok {
		b.WriteString("#" + c)
	}
	return hex.EncodeToString(b.Bytes())
}

// ruleKey is exprKey of one of our rules: its expressions go through
// the decoding the kernel's answer does, so both compare equal.
func ruleKey(f Family, r *Rule) (string, error) {
	es, err := r.Exprs(f)
	if err != nil {
		return "", err
	}
	for i, e := range es {
		data, err := expr.MarshalExprData(byte(f.nft()), e)
		if err != nil {
			return "", err
		}
		fresh := reflect.New(reflect.TypeOf(e).Elem()).Interface().(expr.Any)
		if err := expr.Unmarshal(byte(f.nft()), data, fresh); err == nil {
			es[i] = fresh
		}
	}
	return exprKey(f, es, commentData(r.Comment)), nil
}
