//go:build unix && !linux

package daemon

import "errors"

// tcpListeners is only implemented on Linux (/proc).
func tcpListeners(int) ([]string, error) { return nil, errors.ErrUnsupported }
