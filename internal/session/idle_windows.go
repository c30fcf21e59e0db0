//go:build windows

package session

import (
	"context"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	procGetLastInputInfo = windows.NewLazySystemDLL("user32.dll").NewProc("GetLastInputInfo")
	procGetTickCount     = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetTickCount")
)

// lastInputInfo is LASTINPUTINFO.
type lastInputInfo struct {
	cbSize uint32
	dwTime uint32
}

// winIdle reads GetLastInputInfo, which tells the last input of the
// calling process's session: truthful only inside the user's session,
// which is why the service launches this helper there.
type winIdle struct{}

func newIdleReader(func(string) string) (idleReader, error) {
	if err := procGetLastInputInfo.Find(); err != nil {
		return nil, fmt.Errorf("%w: GetLastInputInfo: %v", ErrUnsupported, err)
	}
	return winIdle{}, nil
}

func (winIdle) idle(context.Context) (uint64, bool, error) {
	li := lastInputInfo{cbSize: uint32(unsafe.Sizeof(lastInputInfo{}))}
	r, _, err := procGetLastInputInfo.Call(uintptr(unsafe.Pointer(&li)))
	if r == 0 {
		return 0, false, err
	}
	now, _, _ := procGetTickCount.Call()
	// Both are milliseconds since boot in a DWORD; the subtraction wraps
	// correctly across GetTickCount's 49.7-day wrap.
	return uint64(uint32(now) - li.dwTime), true, nil
}
