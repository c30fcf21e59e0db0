//go:build linux

package outbox

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncData makes f's data (and the metadata needed to read it back, such
// as its size) durable: fdatasync(2).
func syncData(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
