package fsutil_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/internal/natstest"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := natstest.TempDir(t)
	p := filepath.Join(dir, "state.json")
	for _, content := range []string{"one", "two, longer"} {
		if err := fsutil.WriteFileAtomic(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != content {
			t.Fatalf("read %q (err %v), want %q", b, err, content)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	// A write into a missing directory fails and leaves nothing behind.
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "no", "x"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestRenameDurableAndSync(t *testing.T) {
	dir := natstest.TempDir(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "sub", "b")
	if err := os.Mkdir(filepath.Dir(b), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.RenameDurable(a, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(b); string(got) != "x" {
		t.Fatalf("content %q after rename over an existing file", got)
	}
	f, err := os.OpenFile(b, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("y"); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.SyncData(f); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
}

func TestSweepTemp(t *testing.T) {
	dir := natstest.TempDir(t)
	p := filepath.Join(dir, "state.json")
	leftover := p + ".12345" + fsutil.TempSuffix
	other := filepath.Join(dir, "other.json.1"+fsutil.TempSuffix)
	for _, f := range []string{p, leftover, other} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fsutil.SweepTemp(p)
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatal("leftover temporary file not swept")
	}
	for _, f := range []string{p, other} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s removed: %v", f, err)
		}
	}
}
