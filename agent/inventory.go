package agent

import (
	"context"
	"path/filepath"
	"time"

	"github.com/kanade/kanade-agent/inventory"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
)

// inventoryReporter is the part of the inventory reporter the agent drives.
type inventoryReporter interface {
	Run(ctx context.Context) error
	SetInterval(d time.Duration)
}

// openInventory opens the inventory outbox and reporter unless disabled.
// The reporter learns from the outbox's acks which hashes the server has,
// so an unchanged category is not re-sent between full runs.
func (a *Agent) openInventory() error {
	if a.opts.DisableInventory {
		return nil
	}
	var rep *inventory.Reporter
	var err error
	pc := a.opts.PcID
	a.invBox, err = newOutboxAck(a, outboxInventory, func(r wire.InventoryReport) (string, error) {
		return subject.Inventory(pc, r.Category)
	}, func(_ string, r wire.InventoryReport) {
		if rep != nil {
			rep.Acked(r)
		}
	})
	if err != nil {
		return err
	}
	rep, err = inventory.New(inventory.Options{
		PcID:          pc,
		Collector:     a.opts.InventoryCollector,
		Interval:      a.opts.Defaults.InventoryInterval,
		CheckInterval: a.opts.InventoryCheckInterval,
		StartSplay:    a.opts.InventoryStartSplay,
		StateFile:     filepath.Join(a.opts.DataDir, "inventory-state.json"),
		Logger:        a.log,
		Enqueue: func(ctx context.Context, r wire.InventoryReport) error {
			_, err := a.invBox.Enqueue(ctx, r)
			return err
		},
	})
	if err != nil {
		return err
	}
	a.inv = rep
	return nil
}
