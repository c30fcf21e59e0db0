//go:build !windows

// Package examples holds no code: its test runs the runnable examples, so
// they cannot rot. (send-command needs a running agent; go vet checks it.)
package examples

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestExamplesRun(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"outbox", []string{"enqueued 1000 events, broker down", "stream OBS_EVENTS holds 1000 messages"}},
		{"embed", []string{"result: exit 0", "agent stopped cleanly"}},
		{"signed-command", []string{"signed=false exit 123", "signed=true  exit 0"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, goBin, "run", "./"+tc.dir).CombinedOutput()
			if err != nil {
				t.Fatalf("go run ./%s: %v\n%s", tc.dir, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("go run ./%s printed no %q:\n%s", tc.dir, w, out)
				}
			}
		})
	}
}
