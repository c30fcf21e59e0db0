package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// kanade-agent --session-agent runs the helper before anything else: here
// without loginctl it says why and exits 3, creating no data directory
// even though the configuration names one.
func TestSessionAgentMode(t *testing.T) {
	t.Setenv("PATH", natstest.TempDir(t))
	dataDir := filepath.Join(natstest.TempDir(t), "data")
	code, out, errOut := runMain(t, context.Background(), map[string]string{"KANADE_DATA_DIR": dataDir},
		"--session-agent", "--session-agent-interval=1s")
	if code != 3 || out != "" || !strings.Contains(errOut, "loginctl not found") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 3 and a word on loginctl", code, out, errOut)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("data dir: %v, want it absent", err)
	}
}
