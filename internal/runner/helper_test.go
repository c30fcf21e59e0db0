package runner

import (
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"
)

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
