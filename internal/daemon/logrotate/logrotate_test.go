package logrotate_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/kanade/kanade-agent/internal/daemon/logrotate"
	"github.com/kanade/kanade-agent/internal/natstest"
)

func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestRotatesAndKeepsMaxFiles(t *testing.T) {
	dir := natstest.TempDir(t)
	w, err := logrotate.Open(filepath.Join(dir, "logs", "agent.log"), logrotate.Options{MaxSize: 20, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Each line is 10 bytes, so every file holds two lines.
	for i := range 9 {
		if _, err := fmt.Fprintf(w, "line %04d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	got := files(t, filepath.Join(dir, "logs"))
	want := map[string]string{
		"agent.log":   "line 0008\n",
		"agent.log.1": "line 0006\nline 0007\n",
		"agent.log.2": "line 0004\nline 0005\n",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}
}

func TestMaxFilesOneTruncates(t *testing.T) {
	dir := natstest.TempDir(t)
	w, err := logrotate.Open(filepath.Join(dir, "a.log"), logrotate.Options{MaxSize: 10, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, s := range []string{"aaaaaaaa\n", "bbbbbbbb\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	got := files(t, dir)
	if len(got) != 1 || got["a.log"] != "bbbbbbbb\n" {
		t.Fatalf("files = %q", got)
	}
}

func TestAppendsToExistingAndCountsItsSize(t *testing.T) {
	dir := natstest.TempDir(t)
	path := filepath.Join(dir, "a.log")
	if err := os.WriteFile(path, []byte("old old old old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := logrotate.Open(path, logrotate.Options{MaxSize: 20, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("new new\n")); err != nil {
		t.Fatal(err)
	}
	got := files(t, dir)
	if got["a.log.1"] != "old old old old\n" || got["a.log"] != "new new\n" {
		t.Fatalf("files = %q", got)
	}
}

func TestOversizedWriteIsNotSplit(t *testing.T) {
	dir := natstest.TempDir(t)
	w, err := logrotate.Open(filepath.Join(dir, "a.log"), logrotate.Options{MaxSize: 4, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	big := strings.Repeat("x", 100)
	if n, err := w.Write([]byte(big)); err != nil || n != 100 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := files(t, dir); got["a.log"] != big {
		t.Fatalf("files = %q", got)
	}
}

func TestRotateFailureKeepsWriting(t *testing.T) {
	dir := natstest.TempDir(t)
	path := filepath.Join(dir, "a.log")
	w, err := logrotate.Open(path, logrotate.Options{MaxSize: 10, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// A directory where the backup goes makes the rename fail on every OS.
	if err := os.MkdirAll(filepath.Join(path+".1", "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"aaaaaaaa\n", "bbbbbbbb\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if w.Err() == nil {
		t.Fatal("Err = nil after a failed rotation")
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "aaaaaaaa\nbbbbbbbb\n" {
		t.Fatalf("log = %q, %v", b, err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	dir := natstest.TempDir(t)
	w, err := logrotate.Open(filepath.Join(dir, "a.log"), logrotate.Options{MaxSize: 1000, MaxFiles: 100})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(w, "g%d-%03d\n", g, i)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var all []string
	for name, content := range files(t, dir) {
		if len(content) > 1000 {
			t.Errorf("%s is %d bytes, over MaxSize", name, len(content))
		}
		all = append(all, strings.Split(strings.TrimSuffix(content, "\n"), "\n")...)
	}
	if len(all) != 800 {
		t.Fatalf("%d lines, want 800", len(all))
	}
	sort.Strings(all)
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("duplicate line %q", all[i])
		}
	}
}

func TestCloseTwiceAndWriteAfterClose(t *testing.T) {
	w, err := logrotate.Open(filepath.Join(natstest.TempDir(t), "a.log"), logrotate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, logrotate.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, logrotate.ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
}
