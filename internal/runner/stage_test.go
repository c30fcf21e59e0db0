package runner

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
)

func TestStageScriptBOM(t *testing.T) {
	dir := natstest.TempDir(t)
	for _, tc := range []struct {
		name, script string
		want         []byte
	}{
		{"ascii", "Write-Output 'hi'\r\nexit 3", append([]byte{0xEF, 0xBB, 0xBF}, "Write-Output 'hi'\r\nexit 3"...)},
		{"non-ascii", "Write-Output 'héllo 日本'", append([]byte{0xEF, 0xBB, 0xBF}, "Write-Output 'héllo 日本'"...)},
		{"empty", "", []byte{0xEF, 0xBB, 0xBF}},
		{"already has BOM", "\uFEFFexit 0", append([]byte{0xEF, 0xBB, 0xBF}, "exit 0"...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := stageScript(dir, tc.script)
			if err != nil {
				t.Fatal(err)
			}
			defer os.Remove(p)
			if filepath.Dir(p) != dir || !strings.HasSuffix(p, ".ps1") || !strings.HasPrefix(filepath.Base(p), "kanade-") {
				t.Fatalf("path %q not kanade-*.ps1 in %q", p, dir)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got % x\nwant % x", got, tc.want)
			}
		})
	}
}

func TestStageScriptDefaultDirAndFailure(t *testing.T) {
	p, err := stageScript("", "exit 0")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if filepath.Dir(p) != filepath.Clean(os.TempDir()) {
		t.Fatalf("staged in %q, want os.TempDir() %q", filepath.Dir(p), os.TempDir())
	}
	_, err = stageScript(filepath.Join(natstest.TempDir(t), "missing"), "exit 0")
	if !errors.Is(err, ErrStage) {
		t.Fatalf("err %v, want ErrStage", err)
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
		if !tc.batch {
			continue
		}
		p, err := stageBatch(natstest.TempDir(t), tc.script)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != tc.want || !strings.HasSuffix(p, ".cmd") {
			t.Errorf("staged %s: %.40q, want %.40q", p, b, tc.want)
		}
	}
}
