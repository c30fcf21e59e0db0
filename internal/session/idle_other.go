//go:build !windows && !linux

package session

import (
	"fmt"
	"runtime"
)

func newIdleReader(func(string) string) (idleReader, error) {
	return nil, fmt.Errorf("%w: no idle reading on %s", ErrUnsupported, runtime.GOOS)
}
