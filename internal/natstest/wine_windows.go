package natstest

import "syscall"

// UnderWine reports whether the process runs under Wine (its ntdll.dll
// exports wine_get_version; Windows' does not).
func UnderWine() bool {
	return syscall.NewLazyDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}
