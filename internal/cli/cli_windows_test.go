//go:build windows

package cli_test

import (
	"fmt"

	"github.com/kanade/kanade-agent/wire"
)

// The shell and scripts of the Windows tests; see helpers_test.go. cmd's
// echo ends lines with CRLF.
const (
	testShell    = wire.ShellCmd
	nl           = "\r\n"
	outErrScript = "echo out& >&2 echo err& exit 3"
)

// sleepScript pings the loopback secs+1 times: one second between pings.
func sleepScript(secs int) string { return fmt.Sprintf("ping -n %d 127.0.0.1 >NUL", secs+1) }
