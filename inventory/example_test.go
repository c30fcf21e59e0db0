package inventory_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/kanade/kanade-agent/inventory"
	"github.com/kanade/kanade-agent/wire"
)

// Collect this machine's inventory once, as `kanade-agent inventory` does.
func ExampleCollect() {
	c := inventory.NewCollector(inventory.CollectorOptions{ClassTimeout: 30 * time.Second})
	reports, err := inventory.Collect(context.Background(), c, "pc-0042")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range reports {
		fmt.Printf("%s %s %s %d classes\n", r.Category, r.Collector, r.Hash[:12], len(r.Data))
	}
}

// staticCollector is a Collector of fixed data, such as a test might use.
type staticCollector struct{}

func (staticCollector) Name() string { return "static" }

func (staticCollector) CollectCategory(_ context.Context, category string) (map[string]any, error) {
	return map[string]any{"thing": []map[string]any{{"category": category}}}, nil
}

// Any Collector can be used; CollectCategory wraps its data in a report.
func ExampleCollectCategory() {
	r, err := inventory.CollectCategory(context.Background(), staticCollector{}, "pc-0042", wire.CategoryOS)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.PcID, r.Category, r.Collector, r.Hash)
	// Output: pc-0042 os static 4303122793d9ff2e9affeebde4596b298b6d9ab1f97a5c255900d9e72007763e
}

// Run a Reporter that hands reports to an outbox and hears back its acks.
func ExampleReporter() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var rep *inventory.Reporter
	enqueue := func(ctx context.Context, r wire.InventoryReport) error {
		// The agent: outbox.Enqueue(ctx, subject.Inventory(r.PcID, r.Category), r),
		// with an on-ack hook that calls rep.Acked(r).
		fmt.Println("enqueued", r.Category, r.Hash)
		go rep.Acked(r) // stands in for the outbox's ack
		return nil
	}
	rep, err := inventory.New(inventory.Options{
		PcID:      "pc-0042",
		Enqueue:   enqueue,
		StateFile: "/var/lib/kanade-agent/inventory.json",
	})
	if err != nil {
		log.Fatal(err)
	}
	rep.SetInterval(4 * time.Hour) // inventory_interval from the effective config, live
	if err := rep.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
