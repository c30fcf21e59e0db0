//go:build windows

package session

import (
	"testing"

	"golang.org/x/sys/windows"
)

// The WTS constants of this package match x/sys/windows'.
func TestWTSConstants(t *testing.T) {
	for _, c := range [][2]uint32{
		{wtsConsoleConnect, windows.WTS_CONSOLE_CONNECT}, {wtsConsoleDisconnect, windows.WTS_CONSOLE_DISCONNECT},
		{wtsSessionLogon, windows.WTS_SESSION_LOGON}, {wtsSessionLogoff, windows.WTS_SESSION_LOGOFF},
		{wtsSessionLock, windows.WTS_SESSION_LOCK}, {wtsSessionUnlock, windows.WTS_SESSION_UNLOCK},
	} {
		if c[0] != c[1] {
			t.Errorf("%#x != %#x", c[0], c[1])
		}
	}
}
