package iptables

import (
	"fmt"
	"strings"

	"github.com/google/nftables"

	"github.com/minidocker-net/minidocker-net/plan"
)

// CreatedTable stands for an iptables table that did not exist before
// minidocker-net's first rule. Applying it changes nothing (iptables
// creates the table on first use); undoing it deletes the table again if it
// is empty, so iptables-save prints exactly what it printed before. The
// first network's setup holds one per such table, and removing the last
// network runs them reversed. iptables-nft cannot delete a table; nftables
// can, over netlink. On the legacy backend tables cannot go and undo does
// nothing.
type CreatedTable struct {
	Family string `json:"family,omitempty"`
	Table  string `json:"table"`
}

func (s *CreatedTable) Kind() string { return "iptables-table" }
func (s *CreatedTable) Commands() []string {
	return []string{"# table " + s.Table + " is created by its first rule"}
}
func (s *CreatedTable) UndoCommands() []string {
	return []string{"nft delete table " + FamilyNamed(s.Family).NFTName + " " + s.Table}
}

// Satisfied: there is nothing to do, the rules create the table.
func (s *CreatedTable) Satisfied(*plan.Context) (bool, error) { return true, nil }

// Apply does nothing: the rules create the table.
func (s *CreatedTable) Apply(*plan.Context) error { return nil }

func (s *CreatedTable) Undo(ctx *plan.Context) error {
	f := FamilyNamed(s.Family)
	rs, err := Current(ctx, f)
	if err != nil {
		return err
	}
	t := rs.Tables[s.Table]
	if t == nil || !t.Empty() || !rs.NFTables {
		return nil
	}
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("%s: %w", s.UndoCommands()[0], err)
	}
	conn.DelTable(&nftables.Table{Family: f.NFT, Name: s.Table})
	if err := conn.Flush(); err != nil && !strings.Contains(err.Error(), "no such file") {
		return fmt.Errorf("%s: %w", s.UndoCommands()[0], err)
	}
	rs.dropTable(s.Table)
	return nil
}
