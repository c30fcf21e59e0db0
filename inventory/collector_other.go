//go:build !windows && !linux

package inventory

import "context"

type unsupportedCollector struct{}

func newPlatformCollector(CollectorOptions) Collector { return unsupportedCollector{} }

func (unsupportedCollector) Name() string { return "unsupported" }

func (unsupportedCollector) CollectCategory(context.Context, string) (map[string]any, error) {
	return nil, ErrUnsupported
}
