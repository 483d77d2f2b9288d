package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Expressions are what the kernel runs; nft's own compiler writes the
// same ones for the rule's text (checked against 'nft --debug=netlink').

var types = map[string]nftables.SetDatatype{
	"ifname": nftables.TypeIFName, "ipv4_addr": nftables.TypeIPAddr, "ipv6_addr": nftables.TypeIP6Addr,
	"inet_proto": nftables.TypeInetProto, "inet_service": nftables.TypeInetService, "verdict": nftables.TypeVerdict,
}

func setType(names []string) (nftables.SetDatatype, error) {
	ts := make([]nftables.SetDatatype, len(names))
	for i, n := range names {
		t, ok := types[n]
		if !ok {
			return nftables.SetDatatype{}, fmt.Errorf("nftables: no type %q", n)
		}
		ts[i] = t
	}
	if len(ts) == 1 {
		return ts[0], nil
	}
	return nftables.ConcatSetType(ts...)
}

// nftSet is the set's kernel object (without elements).
func nftSet(t *nftables.Table, s *Set) (*nftables.Set, error) {
	key, err := setType(s.Key)
	if err != nil {
		return nil, err
	}
	// nft prints a key by its byte order: strings (ifname) are the host's.
	order := binaryutil.ByteOrder(binaryutil.BigEndian)
	if s.Key[0] == "ifname" {
		order = binaryutil.NativeEndian
	}
	ns := &nftables.Set{Table: t, Name: s.Name, KeyType: key, IsMap: s.isMap(), KeyByteOrder: order}
	if s.isMap() {
		if ns.DataType, err = setType(s.Data); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// fieldBytes encodes one value of an nft type.
func fieldBytes(typ, v string) ([]byte, error) {
	switch typ {
	case "ifname":
		name, err := strconv.Unquote(v)
		if err != nil {
			name = v
		}
		return ifname(name), nil
	case "ipv4_addr", "ipv6_addr":
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, err
		}
		return a.AsSlice(), nil
	case "inet_proto":
		switch v {
		case "tcp":
			return []byte{unix.IPPROTO_TCP}, nil
		case "udp":
			return []byte{unix.IPPROTO_UDP}, nil
		}
		return nil, fmt.Errorf("nftables: no protocol %q", v)
	case "inet_service":
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return nil, err
		}
		return binaryutil.BigEndian.PutUint16(uint16(n)), nil
	}
	return nil, fmt.Errorf("nftables: cannot encode %q as %s", v, typ)
}

// valueBytes encodes "a . b . c": each field padded to 4 bytes when
// concatenated, as the kernel's registers hold them.
func valueBytes(typs []string, v string) ([]byte, error) {
	parts := strings.Split(v, " . ")
	if len(parts) != len(typs) {
		return nil, fmt.Errorf("nftables: %q is not a %s", v, strings.Join(typs, " . "))
	}
	var out []byte
	for i, p := range parts {
		b, err := fieldBytes(typs[i], p)
		if err != nil {
			return nil, err
		}
		if len(typs) > 1 {
			for len(b)%4 != 0 {
				b = append(b, 0)
			}
		}
		out = append(out, b...)
	}
	return out, nil
}

// decodeValue is valueBytes' inverse, for what the kernel lists.
func decodeValue(typs []string, b []byte) (string, error) {
	parts := make([]string, len(typs))
	for i, typ := range typs {
		size := map[string]int{"ifname": 16, "ipv4_addr": 4, "ipv6_addr": 16, "inet_proto": 1, "inet_service": 2}[typ]
		if size == 0 || len(b) < size {
			return "", fmt.Errorf("nftables: cannot decode a %s from %x", typ, b)
		}
		switch typ {
		case "ifname":
			parts[i] = strconv.Quote(strings.TrimRight(string(b[:size]), "\x00"))
		case "ipv4_addr", "ipv6_addr":
			a, _ := netip.AddrFromSlice(b[:size])
			parts[i] = a.String()
		case "inet_proto":
			parts[i] = map[byte]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp"}[b[0]]
			if parts[i] == "" {
				parts[i] = strconv.Itoa(int(b[0]))
			}
		case "inet_service":
			parts[i] = strconv.Itoa(int(binary.BigEndian.Uint16(b)))
		}
		if len(typs) > 1 {
			size = (size + 3) / 4 * 4
		}
		b = b[min(size, len(b)):]
	}
	return strings.Join(parts, " . "), nil
}

// nftElem is the kernel's form of an element of s.
func nftElem(s *Set, e Elem) (nftables.SetElement, error) {
	key, err := valueBytes(s.Key, e.Key)
	if err != nil {
		return nftables.SetElement{}, err
	}
	el := nftables.SetElement{Key: key}
	switch {
	case s.verdicts():
		chain, ok := strings.CutPrefix(e.Data, "jump ")
		if !ok {
			return el, fmt.Errorf("nftables: verdict %q is not a jump", e.Data)
		}
		el.VerdictData = &expr.Verdict{Kind: expr.VerdictJump, Chain: chain}
	case s.isMap():
		if el.Val, err = valueBytes(s.Data, e.Data); err != nil {
			return el, err
		}
	}
	return el, nil
}

// elemOf is what the kernel lists as an element of s.
func elemOf(s *Set, el nftables.SetElement) (Elem, error) {
	k, err := decodeValue(s.Key, el.Key)
	if err != nil {
		return Elem{}, err
	}
	e := Elem{Key: k}
	switch {
	case s.verdicts():
		e.Data = "?"
		if chain, ok := jumpOf(el.Val); ok {
			e.Data = jump(chain)
		}
	case s.isMap():
		if e.Data, err = decodeValue(s.Data, el.Val); err != nil {
			return e, err
		}
	}
	return e, nil
}

// jumpOf reads a verdict map element's data, the kernel's nested
// verdict attributes (code, chain), as google/nftables v0.3.0 leaves
// them: a jump's chain.
func jumpOf(b []byte) (string, bool) {
	code, chain := int32(0), ""
	for len(b) >= 4 {
		n, typ := int(binary.NativeEndian.Uint16(b)), binary.NativeEndian.Uint16(b[2:])&0x3fff
		if n < 4 || n > len(b) {
			break
		}
		data := b[4:n]
		switch {
		case typ == unix.NFTA_VERDICT_CODE && len(data) == 4:
			code = int32(binary.BigEndian.Uint32(data))
		case typ == unix.NFTA_VERDICT_CHAIN:
			chain = strings.TrimRight(string(data), "\x00")
		}
		b = b[min(len(b), (n+3)&^3):]
	}
	return chain, code == unix.NFT_JUMP && chain != ""
}

func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

// reg is the register of a value at a 4-byte word offset in a
// concatenation: a 16-byte register where one starts, else a 32-bit one,
// as the kernel lists them.
func reg(word int) uint32 {
	if word%4 == 0 {
		return unix.NFT_REG_1 + uint32(word/4)
	}
	return unix.NFT_REG32_00 + uint32(word)
}

// fieldLoad loads one lookup field into register r and returns its size.
func fieldLoad(f Family, field string, r uint32) (expr.Any, int) {
	addr, saddr := uint32(4), uint32(12)
	if f == IPv6 {
		addr, saddr = 16, 8
	}
	switch field {
	case "saddr":
		return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: saddr, Len: addr}, int(addr)
	case "daddr":
		return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: saddr + addr, Len: addr}, int(addr)
	case "l4proto":
		return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: r}, 1
	case "dport":
		return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, 2
	case "sport":
		return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2}, 2
	case "iifname":
		return &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: r}, 16
	case "oifname":
		return &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: r}, 16
	}
	return nil, 0
}

// concat loads fields one after the other, from register 1.
func concat(f Family, fields []string) []expr.Any {
	var out []expr.Any
	word := 0
	for _, field := range fields {
		e, size := fieldLoad(f, field, reg(word))
		out = append(out, e)
		word += (size + 3) / 4
	}
	return out
}

func cmpOp(neg bool) expr.CmpOp {
	if neg {
		return expr.CmpOpNeq
	}
	return expr.CmpOpEq
}

func (m Match) exprs(f Family) ([]expr.Any, error) {
	switch m.Key {
	case "iifname", "oifname":
		load, _ := fieldLoad(f, m.Key, 1)
		data := ifname(m.Val)
		if p, ok := strings.CutSuffix(m.Val, "*"); ok {
			data = []byte(p)
		}
		return []expr.Any{load, &expr.Cmp{Op: cmpOp(m.Neg), Register: 1, Data: data}}, nil
	case "saddr", "daddr":
		p, err := netip.ParsePrefix(m.Val)
		if err != nil {
			a, aerr := netip.ParseAddr(m.Val)
			if aerr != nil {
				return nil, fmt.Errorf("nftables: bad address %q", m.Val)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		load, size := fieldLoad(f, m.Key, 1)
		pl := load.(*expr.Payload)
		bits := p.Bits()
		if bits%8 == 0 && bits < p.Addr().BitLen() {
			// Byte-aligned prefixes compare only their bytes, as nft does.
			pl.Len = uint32(bits / 8)
			return []expr.Any{pl, &expr.Cmp{Op: cmpOp(m.Neg), Register: 1, Data: p.Addr().AsSlice()[:bits/8]}}, nil
		}
		out := []expr.Any{pl}
		if bits < p.Addr().BitLen() {
			mask := make([]byte, size)
			for i := 0; i < bits; i++ {
				mask[i/8] |= 0x80 >> (i % 8)
			}
			out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(size), Mask: mask, Xor: make([]byte, size)})
		}
		return append(out, &expr.Cmp{Op: cmpOp(m.Neg), Register: 1, Data: p.Masked().Addr().AsSlice()}), nil
	case "fib-saddr", "fib-daddr":
		fib := &expr.Fib{Register: 1, ResultADDRTYPE: true}
		if m.Key == "fib-saddr" {
			fib.FlagSADDR = true
		} else {
			fib.FlagDADDR = true
		}
		return []expr.Any{fib, &expr.Cmp{Op: cmpOp(m.Neg), Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)}}, nil
	case "ct":
		mask := binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED)
		op := expr.CmpOpNeq
		if m.Neg {
			op = expr.CmpOpEq
		}
		return []expr.Any{&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: op, Register: 1, Data: make([]byte, 4)}}, nil
	case "tcp-dport", "udp-dport", "tcp-sport", "udp-sport":
		proto, port, _ := strings.Cut(m.Key, "-")
		pb, err := fieldBytes("inet_proto", proto)
		if err != nil {
			return nil, err
		}
		n, err := fieldBytes("inet_service", m.Val)
		if err != nil {
			return nil, err
		}
		load, _ := fieldLoad(f, port, 1)
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: pb},
			load, &expr.Cmp{Op: cmpOp(m.Neg), Register: 1, Data: n}}, nil
	case "set":
		return append(concat(f, m.Fields), &expr.Lookup{SourceRegister: 1, SetName: m.Val, Invert: m.Neg}), nil
	case "l4proto":
		p, ok := map[string]byte{"icmp": unix.IPPROTO_ICMP, "icmpv6": unix.IPPROTO_ICMPV6, "tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP}[m.Val]
		if !ok {
			return nil, fmt.Errorf("nftables: no protocol %q", m.Val)
		}
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: cmpOp(m.Neg), Register: 1, Data: []byte{p}}}, nil
	}
	return nil, fmt.Errorf("nftables: no match %q", m.Key)
}

func (v Verdict) exprs(f Family) ([]expr.Any, error) {
	fam := uint32(unix.NFPROTO_IPV4)
	if f == IPv6 {
		fam = unix.NFPROTO_IPV6
	}
	switch v.Kind {
	case "accept":
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, nil
	case "drop":
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, nil
	case "jump":
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: v.Arg}}, nil
	case "vmap":
		load, _ := fieldLoad(f, v.Fields[0], 1)
		return []expr.Any{load, &expr.Lookup{SourceRegister: 1, SetName: v.Arg, IsDestRegSet: true, DestRegister: 0}}, nil
	case "masquerade":
		return []expr.Any{&expr.Masq{}}, nil
	case "nftrace":
		return []expr.Any{&expr.Immediate{Register: 1, Data: []byte{1}}, &expr.Meta{Key: expr.MetaKeyNFTRACE, SourceRegister: true, Register: 1}}, nil
	case "dnat-map":
		addr := 1
		if f == IPv6 {
			addr = 4
		}
		return append(concat(f, v.Fields),
			&expr.Lookup{SourceRegister: 1, SetName: v.Arg, IsDestRegSet: true, DestRegister: 1},
			// Both ends of each range, and the flag, as the kernel lists
			// what it was given (so the rules compare equal).
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: reg(addr), RegProtoMax: reg(addr), Specified: true}), nil
	case "dnat", "snat":
		ap, err := netip.ParseAddrPort(v.Arg)
		if err != nil {
			return nil, fmt.Errorf("nftables: bad %s target %q", v.Kind, v.Arg)
		}
		typ := expr.NATTypeDestNAT
		if v.Kind == "snat" {
			typ = expr.NATTypeSourceNAT
		}
		return []expr.Any{&expr.Immediate{Register: 1, Data: ap.Addr().AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(ap.Port())},
			&expr.NAT{Type: typ, Family: fam, RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 2, RegProtoMax: 2, Specified: true}}, nil
	}
	return nil, fmt.Errorf("nftables: no verdict %q", v.Kind)
}

// Exprs compiles the rule for a table of family f.
func (r Rule) Exprs(f Family) ([]expr.Any, error) {
	var out []expr.Any
	for _, m := range r.Match {
		e, err := m.exprs(f)
		if err != nil {
			return nil, err
		}
		out = append(out, e...)
	}
	v, err := r.Verdict.exprs(f)
	if err != nil {
		return nil, err
	}
	return append(out, v...), nil
}

// commentData is a rule comment as nft stores it in the rule's user data.
func commentData(c string) []byte {
	if c == "" {
		return nil
	}
	return append([]byte{0, byte(len(c) + 1)}, append([]byte(c), 0)...)
}
