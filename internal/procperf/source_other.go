//go:build !linux && !windows

package procperf

import "context"

type noSource struct{}

func newSystemSource() source { return noSource{} }

func (noSource) list(context.Context, []proc) ([]proc, error) { return nil, ErrUnsupported }

func (noSource) readIO(*proc) {}
