//go:build !windows

package timeline

import (
	"context"
	"fmt"
)

// defaultEventLog is Options.EventLog's default: none off Windows.
func defaultEventLog() EventLog { return nil }

// defaultResolveSID keeps the SID off Windows.
func defaultResolveSID() func(string) string { return func(sid string) string { return sid } }

// LiveEventLog is the live Windows event log reader (wevtapi.dll); off
// Windows its Query returns an error wrapping ErrUnsupported.
type LiveEventLog struct{}

// Query returns an error wrapping ErrUnsupported.
func (LiveEventLog) Query(context.Context, string, string, int) ([]string, error) {
	return nil, fmt.Errorf("%w: not Windows", ErrUnsupported)
}
