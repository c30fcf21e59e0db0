//go:build !windows

package daemon

import (
	"context"
	"errors"
	"io"
)

var errServiceWindowsOnly = errors.New("install and uninstall manage a Windows service; elsewhere run kanade-agent under your service manager (for example a systemd unit with Restart=always)")

func isWindowsService() bool { return false }

func runService(context.Context, *flags, *system) int { return ExitFailure }

func installService(_ *flags, _ *system, _, stderr io.Writer) int {
	return fail(stderr, &UsageError{Err: errServiceWindowsOnly})
}

func uninstallService(_, stderr io.Writer) int {
	return fail(stderr, &UsageError{Err: errServiceWindowsOnly})
}
