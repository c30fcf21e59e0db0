//go:build linux

package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// SyncData makes f's data, and the metadata needed to read it back such as
// its size, durable: fdatasync(2) on Linux.
func SyncData(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
