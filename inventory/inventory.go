package inventory

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// DefaultClassTimeout is the default time allowed to one class (one WMI
// query, one /proc file, the package database, ...) before it is abandoned.
const DefaultClassTimeout = 30 * time.Second

// Collector gathers the inventory data of one category.
//
// CollectCategory returns the Data of an InventoryReport for category (one of
// wire.Categories): class name → list of objects, plus ErrorsKey listing the
// classes that failed. A failing class never fails the call; the error is
// non-nil only for an unknown category (ErrUnknownCategory), when ctx ends,
// or on an operating system without a collector (ErrUnsupported).
// Implementations must be safe for concurrent use and should return within
// their own timeouts; Reporter abandons a call that does not.
type Collector interface {
	// Name returns the collector name put in InventoryReport.Collector:
	// "wmi" on Windows, "linux" on Linux.
	Name() string
	// CollectCategory collects one category, as described on Collector.
	CollectCategory(ctx context.Context, category string) (map[string]any, error)
}

// CollectorOptions configures NewCollector. The zero value is ready to use.
type CollectorOptions struct {
	// ClassTimeout bounds each class (each WMI query, each Linux source).
	// A class that takes longer is reported in ErrorsKey and abandoned; while
	// it is still running a later collection reports it as still running
	// instead of starting it again. Default DefaultClassTimeout.
	ClassTimeout time.Duration
	// Root is the file-system root the Linux collector reads /proc, /sys,
	// /etc and /var/lib from. Default "/". Ignored on Windows.
	Root string
}

func (o *CollectorOptions) setDefaults() {
	if o.ClassTimeout <= 0 {
		o.ClassTimeout = DefaultClassTimeout
	}
	if o.Root == "" {
		o.Root = "/"
	}
}

// NewCollector returns the collector of the running operating system: WMI
// and the registry on Windows ("wmi"), /proc, /sys, /etc and the package
// database on Linux ("linux"). Elsewhere it returns a collector whose
// CollectCategory fails with ErrUnsupported.
func NewCollector(opts CollectorOptions) Collector {
	opts.setDefaults()
	return newPlatformCollector(opts)
}

// CollectCategory collects one category with c and wraps it in a report for
// pcID with At, Collector and Hash set.
func CollectCategory(ctx context.Context, c Collector, pcID, category string) (wire.InventoryReport, error) {
	if !slices.Contains(wire.Categories, category) {
		return wire.InventoryReport{}, fmt.Errorf("%w %q", ErrUnknownCategory, category)
	}
	data, err := c.CollectCategory(ctx, category)
	if err != nil {
		return wire.InventoryReport{}, err
	}
	return newReport(pcID, category, c.Name(), time.Now(), data)
}

// Collect collects every category of wire.Categories, in that order, with c.
// It returns the reports it could build and the first error met (ctx ended,
// ErrUnsupported); a class that failed is reported inside its report.
func Collect(ctx context.Context, c Collector, pcID string) ([]wire.InventoryReport, error) {
	reports := make([]wire.InventoryReport, 0, len(wire.Categories))
	var first error
	for _, cat := range wire.Categories {
		r, err := CollectCategory(ctx, c, pcID, cat)
		if err != nil {
			if first == nil {
				first = err
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		reports = append(reports, r)
	}
	return reports, first
}

func newReport(pcID, category, collector string, at time.Time, data map[string]any) (wire.InventoryReport, error) {
	if data == nil {
		data = map[string]any{}
	}
	h, err := wire.HashData(data)
	if err != nil {
		return wire.InventoryReport{}, fmt.Errorf("inventory: %s: %w", category, err)
	}
	return wire.InventoryReport{
		PcID:      pcID,
		At:        at.UTC().Truncate(time.Millisecond),
		Category:  category,
		Collector: collector,
		Hash:      h,
		Data:      data,
	}, nil
}
