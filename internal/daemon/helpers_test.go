package daemon

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// testSystem is a fake Linux machine for user uid 1000 with environment env.
func testSystem(env map[string]string) *system {
	return &system{
		goos:     "linux",
		uid:      1000,
		getenv:   func(k string) string { return env[k] },
		hostname: func() (string, error) { return "Test.Host", nil },
		homeDir:  func() (string, error) { return "", errors.New("no home") },
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkFor calls f every `every` until it returns nil, failing the test
// with f's last error after total.
func checkFor(t *testing.T, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", total, err)
		}
		time.Sleep(every)
	}
}
