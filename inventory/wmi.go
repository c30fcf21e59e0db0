package inventory

import (
	"context"
	"fmt"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// wmiCollector is the Windows collector ("wmi"): the WMI classes of
// wmiClasses for hw, os and net, the Uninstall registry keys for sw. Each
// class runs under the class timeout, its WMI query on the class's own COM
// worker thread (wmi_windows.go). The type is portable so that tests on any
// machine can drive it with recorded results; only its default query
// functions are Windows-only.
type wmiCollector struct {
	timeout time.Duration
	g       guard
	// query runs one class (queryWMI on Windows).
	query func(ctx context.Context, c wmiClass) (result, error)
	// uninstall reads the installed programs (readUninstall on Windows).
	uninstall func(ctx context.Context) (result, error)
}

func (c *wmiCollector) Name() string { return "wmi" }

func (c *wmiCollector) CollectCategory(ctx context.Context, category string) (map[string]any, error) {
	var srcs []source
	switch category {
	case wire.CategoryHW, wire.CategoryOS, wire.CategoryNet:
		for _, cl := range wmiClassesOf(category) {
			srcs = append(srcs, source{Class: cl.Class, Run: func(ctx context.Context) (result, error) { return c.query(ctx, cl) }})
		}
	case wire.CategorySW:
		srcs = []source{{Class: uninstallClass, Run: c.uninstall}}
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownCategory, category)
	}
	return runSources(ctx, &c.g, c.timeout, srcs)
}
