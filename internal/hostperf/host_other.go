//go:build !linux && !windows

package hostperf

type unsupportedSource struct{}

func (unsupportedSource) read(*reading) error { return ErrUnsupported }

func newSystemSource() source { return unsupportedSource{} }
