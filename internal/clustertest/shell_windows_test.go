package clustertest_test

import (
	"fmt"

	"github.com/kanade/kanade-agent/wire"
)

// testShell is the shell of the test commands.
const testShell = wire.ShellCmd

// echoScript prints s and a newline; nl is that newline.
func echoScript(s string) string { return "echo " + s }

const nl = "\r\n"

// sleepEchoScript waits about secs seconds, then prints s.
func sleepEchoScript(secs int, s string) string {
	return fmt.Sprintf("ping -n %d 127.0.0.1 >nul & echo %s", secs+1, s)
}

// bigOutputScript prints over 400,000 bytes (over the 256 KiB inline limit).
const bigOutputScript = `for /L %i in (1,1,4000) do @echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`
