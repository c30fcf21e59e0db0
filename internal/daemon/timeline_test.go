package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestTimelineSetting: the timeline is on by default and turned off by the
// flag, the environment or the config file; on, the daemon gives the
// agent the timeline source on Windows and Linux.
func TestTimelineSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		file string
		want bool
	}{
		{"default on", nil, nil, "", true},
		{"flag off", []string{"--timeline=false"}, nil, "", false},
		{"env off", nil, map[string]string{"KANADE_TIMELINE": "false"}, "", false},
		{"file off", nil, nil, "timeline = false", false},
		{"flag over file", []string{"--timeline"}, nil, "timeline = false", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.args, tc.env, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Timeline != tc.want {
				t.Fatalf("Timeline = %v, want %v", cfg.Timeline, tc.want)
			}
			cfg.DataDir = natstest.TempDir(t)
			n := len(timelineSources(cfg, slog.New(slog.DiscardHandler)))
			want := 0
			if tc.want && (runtime.GOOS == "windows" || runtime.GOOS == "linux") {
				want = 1
			}
			if n != want {
				t.Fatalf("%d obs sources, want %d", n, want)
			}
		})
	}
	if _, err := load(t, nil, nil, `timeline = "yes"`); err == nil {
		t.Error("timeline = \"yes\" accepted")
	}
}

// TestRunStartsTimeline: the daemon's agent runs the timeline source.
func TestRunStartsTimeline(t *testing.T) {
	if runtime.GOOS != "windows" && runtime.GOOS != "linux" {
		t.Skip("the timeline runs on Windows and Linux only")
	}
	dir := natstest.TempDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		code, _, _ := runMain(t, ctx, map[string]string{"HOME": "/home/u"}, "--data-dir", dir, "--pc-id", "timeline-pc")
		done <- code
	}()
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		b, _ := os.ReadFile(LogPath(dir))
		if !strings.Contains(string(b), "timeline source running") {
			return errors.New("no timeline notice in the log file yet")
		}
		return nil
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Main did not return 15 s after the stop")
	}
}
