//go:build unix

package runner

import (
	"context"
	"strings"
	"sync"
	"testing"
)

// TestRunTap: Spec.Tap receives each stream's output as it is read, past
// MaxOutput too, and tells stdout from stderr.
func TestRunTap(t *testing.T) {
	var mu sync.Mutex
	var out, errs strings.Builder
	s := sh("printf abc; printf xyz >&2; printf def")
	s.MaxOutput = 2
	s.Tap = func(stderr bool, p []byte) {
		mu.Lock()
		defer mu.Unlock()
		if stderr {
			errs.Write(p)
		} else {
			out.Write(p)
		}
	}
	r := Run(context.Background(), s)
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("exit %d err %v", r.ExitCode, r.Err)
	}
	if out.String() != "abcdef" || errs.String() != "xyz" || string(r.Stdout) != "ab" {
		t.Fatalf("tap stdout %q stderr %q, kept %q", out.String(), errs.String(), r.Stdout)
	}
}
