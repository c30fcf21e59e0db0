//go:build !windows

package clustertest_test

import (
	"fmt"

	"github.com/kanade/kanade-agent/wire"
)

// testShell is the shell of the test commands.
const testShell = wire.ShellSh

// echoScript prints s and a newline; nl is that newline.
func echoScript(s string) string { return "echo " + s }

const nl = "\n"

// sleepEchoScript waits about secs seconds, then prints s.
func sleepEchoScript(secs int, s string) string { return fmt.Sprintf("sleep %d; echo %s", secs, s) }

// bigOutputScript prints 400,000 bytes (over the 256 KiB inline limit).
const bigOutputScript = "head -c 400000 /dev/zero | tr '\\0' x"
