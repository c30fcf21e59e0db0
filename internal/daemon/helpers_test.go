package daemon

import (
	"errors"
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
