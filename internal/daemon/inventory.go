package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/kanade/kanade-agent/inventory"
)

// inventoryCmd runs the "inventory" subcommand: it collects this machine's
// inventory for pcID and writes it to w (stdout) as JSON, one
// InventoryReport per category, without connecting anywhere: the first
// thing a support engineer runs on a misbehaving PC. Classes that failed are
// listed inside each report (see package inventory). A variable so tests
// can replace it.
var inventoryCmd = func(ctx context.Context, pcID string, w io.Writer) error {
	reports, err := inventory.Collect(ctx, inventory.NewCollector(inventory.CollectorOptions{}), pcID)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	for _, r := range reports {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}
