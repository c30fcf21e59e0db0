//go:build unix

package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

// The shell and scripts of the Unix tests; see helpers_test.go.
const (
	testShell    = wire.ShellSh
	nl           = "\n"
	outErrScript = "echo out; echo err >&2; exit 3"
)

func sleepScript(secs int) string { return fmt.Sprintf("sleep %d", secs) }

func TestKeygenFileMode(t *testing.T) {
	t.Parallel()
	dir := natstest.TempDir(t)
	for _, force := range []bool{false, true} {
		key := filepath.Join(dir, "k.key")
		args := []string{"keygen", "--kid", "k", "--out", key}
		if force {
			args = append(args, "--force")
		}
		run(args...).want(t, 0)
		st, err := os.Stat(key)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("force=%v: key file mode %v, want 0600", force, m)
		}
	}
}

// TestExecOffloadedOutput: output over 256 KiB reaches the result through
// the result_output object store, and exec prints it whole.
func TestExecOffloadedOutput(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	startAgent(t, srv.URL(), "pc-big", nil)
	const n = 300 << 10
	o := kanade(srv.URL())("exec", "--pc", "pc-big", "--wait", "30s",
		fmt.Sprintf("head -c %d /dev/zero | tr '\\0' a", n)).want(t, 0)
	if len(o.stdout) != n || strings.Trim(o.stdout, "a") != "" {
		t.Fatalf("stdout: %d bytes (%q...), want %d bytes of 'a'", len(o.stdout), o.stdout[:min(len(o.stdout), 40)], n)
	}
}
