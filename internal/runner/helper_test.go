package runner

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// checkFor calls f every interval until it returns nil or total passes, then
// fails the test with f's last error.
func checkFor(t *testing.T, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}

// tempDir is t.TempDir without os.RemoveAll, which fails under Wine: the
// cleanup removes the tree file by file, deepest first, and only logs what
// it could not remove.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "runner-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var paths []string
		filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
			if err == nil {
				paths = append(paths, p)
			}
			return nil
		})
		for i := len(paths) - 1; i >= 0; i-- {
			// A file of a just-killed process may be held for a moment.
			deadline := time.Now().Add(2 * time.Second)
			for {
				err := os.Remove(paths[i])
				if err == nil || os.IsNotExist(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Logf("cleanup: %v", err)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	return dir
}

// helperEnv makes the test binary act as a helper process instead of
// running tests (see TestMain).
const helperEnv = "KANADE_RUNNER_HELPER"

// TestMain lets the test binary double as a child process for the tests:
//
//	KANADE_RUNNER_HELPER=sleep <exe> <pidfile>  writes its pid to pidfile, then sleeps an hour
//	KANADE_RUNNER_HELPER=spew <exe> <n>         writes n bytes to stdout and n to stderr, concurrently
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "sleep":
		p := os.Args[len(os.Args)-1]
		if err := os.WriteFile(p+".tmp", []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			os.Exit(3)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			os.Exit(4)
		}
		time.Sleep(time.Hour)
		os.Exit(0)
	case "spew":
		n, err := strconv.Atoi(os.Args[len(os.Args)-1])
		if err != nil {
			os.Exit(3)
		}
		done := make(chan struct{})
		go func() { defer close(done); spew(os.Stderr, n, 'e') }()
		spew(os.Stdout, n, 'o')
		<-done
		os.Exit(0)
	}
	os.Exit(5)
}

func spew(f *os.File, n int, c byte) {
	buf := bytes.Repeat([]byte{c}, 64<<10)
	for n > 0 {
		k := min(n, len(buf))
		if _, err := f.Write(buf[:k]); err != nil {
			os.Exit(6)
		}
		n -= k
	}
}
