package iptables

import "github.com/google/nftables"

// Family is one address family's tools: iptables for IPv4, ip6tables for
// IPv6. Every step, ruleset and command carries its family, so the
// ip6tables rules of dual-stack networks plan, apply, print and remove
// themselves through the same code as IPv4's.
type Family struct {
	Name    string // "ipv4", "ipv6": how steps record it
	Tool    string // iptables
	Save    string // iptables-save
	Restore string // iptables-restore
	NFT     nftables.TableFamily
	NFTName string // ip, ip6: the family as nft names it
}

var (
	IPv4 = Family{Name: "ipv4", Tool: "iptables", Save: "iptables-save", Restore: "iptables-restore", NFT: nftables.TableFamilyIPv4, NFTName: "ip"}
	IPv6 = Family{Name: "ipv6", Tool: "ip6tables", Save: "ip6tables-save", Restore: "ip6tables-restore", NFT: nftables.TableFamilyIPv6, NFTName: "ip6"}
)

// FamilyNamed returns a family by the name a step recorded; "" is IPv4, as
// steps journaled before families were.
func FamilyNamed(name string) Family {
	if name == IPv6.Name {
		return IPv6
	}
	return IPv4
}

// tool is the family's command, IPv4's for a ruleset parsed without one.
func (f Family) tool() string {
	if f.Tool == "" {
		return IPv4.Tool
	}
	return f.Tool
}

// familyField is how a step records a family: "" for IPv4, as before
// families were recorded.
func familyField(f Family) string {
	if f.Name == IPv6.Name {
		return f.Name
	}
	return ""
}

// key names a family's entry in a plan's cache.
func (f Family) key(what string) string { return "iptables." + f.Name + "." + what }
