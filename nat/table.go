package nat

import (
	"fmt"
	"strings"

	"github.com/google/nftables"

	"github.com/minidocker-net/minidocker-net/plan"
)

// DropTable deletes an iptables table that minidocker-net caused to exist
// and that is empty again, so that iptables-save prints exactly what it
// printed before the first network. iptables-nft creates a table on first
// use but offers no way to delete one; nftables does, over netlink. On the
// legacy backend tables cannot be removed and the step does nothing.
type DropTable struct {
	Table string `json:"table"`
}

func (s *DropTable) Kind() string       { return "nft-drop-table" }
func (s *DropTable) Commands() []string { return []string{"nft delete table ip " + s.Table} }
func (s *DropTable) UndoCommands() []string {
	return []string{"# table ip " + s.Table + " is created again by the next iptables command"}
}

// Undo does nothing: iptables-restore creates the table when it next needs it.
func (s *DropTable) Undo(*plan.Context) error { return nil }

func (s *DropTable) Apply(ctx *plan.Context) error {
	rs, err := Current(ctx)
	if err != nil {
		return err
	}
	t := rs.Tables[s.Table]
	if t == nil || !t.Empty() || !rs.NFTables {
		return nil
	}
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nft delete table ip %s: %w", s.Table, err)
	}
	conn.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.Table})
	if err := conn.Flush(); err != nil && !strings.Contains(err.Error(), "no such file") {
		return fmt.Errorf("nft delete table ip %s: %w", s.Table, err)
	}
	rs.dropTable(s.Table)
	return nil
}
