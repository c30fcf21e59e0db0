package runner

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStagePowerShell: a PowerShell run stages the script verbatim after a
// BOM and a launcher that calls it, both in a fresh folder of StageDir
// that remove takes away.
func TestStagePowerShell(t *testing.T) {
	bom := []byte{0xEF, 0xBB, 0xBF}
	for _, tc := range []struct {
		name, script string
		want         []byte
	}{
		{"ascii", "Write-Output 'hi'\r\nexit 3", append(bom, "Write-Output 'hi'\r\nexit 3"...)},
		{"non-ascii", "Write-Output 'héllo 日本'", append(bom, "Write-Output 'héllo 日本'"...)},
		{"param header stays first", "[CmdletBinding()]\nparam([string]$X = 'a')\n$X", append(bom, "[CmdletBinding()]\nparam([string]$X = 'a')\n$X"...)},
		{"empty", "", bom},
		{"already has BOM", "\uFEFFexit 0", append(bom, "exit 0"...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := natstest.TempDir(t)
			st, err := stageFor(&Spec{Shell: wire.ShellPowerShell, Script: tc.script, StageDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Dir(st.dir) != dir || !strings.HasPrefix(filepath.Base(st.dir), "run-") {
				t.Fatalf("stage folder %q not run-* in %q", st.dir, dir)
			}
			script := filepath.Join(st.dir, stagedPS1)
			if got := readFile(t, script); !bytes.Equal(got, tc.want) {
				t.Fatalf("script % x\nwant % x", got, tc.want)
			}
			if st.run != filepath.Join(st.dir, stagedLauncher) {
				t.Fatalf("run %q, want the launcher", st.run)
			}
			if got, want := readFile(t, st.run), withBOM(launcher(script)); !bytes.Equal(got, want) {
				t.Fatalf("launcher %q\nwant %q", got, want)
			}
			st.remove()
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("left after remove: %v", left)
			}
		})
	}
}

// TestLauncher pins the launcher byte for byte (see docs/protocol.md).
func TestLauncher(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{`C:\ProgramData\Kanade\staging\run-1\script.ps1`,
			"[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false; $OutputEncoding = [Console]::OutputEncoding; " +
				`$global:LASTEXITCODE = 0; & 'C:\ProgramData\Kanade\staging\run-1\script.ps1'; exit $LASTEXITCODE` + "\r\n"},
		// Quotes in the path, typographic ones included, are doubled.
		{`C:\it's ‘a’ ‚b‛\s.ps1`,
			"[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false; $OutputEncoding = [Console]::OutputEncoding; " +
				`$global:LASTEXITCODE = 0; & 'C:\it''s ‘‘a’’ ‚‚b‛‛\s.ps1'; exit $LASTEXITCODE` + "\r\n"},
		// $ and ` are literal in single quotes.
		{"/tmp/$x`y/s.ps1",
			"[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false; $OutputEncoding = [Console]::OutputEncoding; " +
				"$global:LASTEXITCODE = 0; & '/tmp/$x`y/s.ps1'; exit $LASTEXITCODE\r\n"},
	} {
		if got := launcher(tc.path); got != tc.want {
			t.Errorf("launcher(%q)\n got %q\nwant %q", tc.path, got, tc.want)
		}
	}
}

func TestStageBatch(t *testing.T) {
	for _, tc := range []struct {
		script string
		batch  bool
		want   string
	}{
		{"echo one line", false, ""},
		{"echo a\necho b", true, "@echo off\r\necho a\r\necho b"},
		{"echo a\r\necho b\r\n", true, "@echo off\r\necho a\r\necho b\r\n"},
		{"echo a\recho b", true, "@echo off\r\necho a\recho b"},
		{"echo " + strings.Repeat("x", maxCmdLine), true, "@echo off\r\necho " + strings.Repeat("x", maxCmdLine)},
	} {
		if got := needsBatch(tc.script); got != tc.batch {
			t.Errorf("needsBatch(%.20q) = %v", tc.script, got)
		}
		st, err := stageFor(&Spec{Shell: wire.ShellCmd, Script: tc.script, StageDir: natstest.TempDir(t)})
		if err != nil {
			t.Fatal(err)
		}
		if !tc.batch {
			if st != nil {
				t.Errorf("%.20q staged", tc.script)
			}
			continue
		}
		if b := readFile(t, st.run); string(b) != tc.want || filepath.Base(st.run) != stagedBatch {
			t.Errorf("staged %s: %.40q, want %.40q", st.run, b, tc.want)
		}
		st.remove()
	}
}

func TestStageDefaultDirAndFailure(t *testing.T) {
	st, err := stageFor(&Spec{Shell: wire.ShellPwsh, Script: "exit 0"})
	if err != nil {
		t.Fatal(err)
	}
	st.remove()
	if filepath.Dir(st.dir) != filepath.Clean(os.TempDir()) {
		t.Fatalf("staged in %q, want os.TempDir() %q", filepath.Dir(st.dir), os.TempDir())
	}
	// A StageDir that is a file cannot be made private.
	file := filepath.Join(natstest.TempDir(t), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = stageFor(&Spec{Shell: wire.ShellPwsh, Script: "exit 0", StageDir: file}); !errors.Is(err, ErrStage) {
		t.Fatalf("err %v, want ErrStage", err)
	}
	// A missing StageDir is created.
	dir := filepath.Join(natstest.TempDir(t), "staging")
	st, err = stageFor(&Spec{Shell: wire.ShellPwsh, Script: "exit 0", StageDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st.remove()
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Fatalf("staging dir: %v %v", left, err)
	}
}
