//go:build windows

package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"golang.org/x/sys/windows"
)

// secretFileSDDL grants full control to SYSTEM, Administrators and the
// file's owner (the agent's user) only, with inheritance from the folder
// cut off: the token stays private even in a data directory that other
// users can read (an agent run without elevation).
const secretFileSDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;OW)"

// writeSecretFile replaces path with data, created with secretFileSDDL
// under a temporary name, flushed, then renamed into place.
func writeSecretFile(path string, data []byte) error {
	sd, err := windows.SecurityDescriptorFromString(secretFileSDDL)
	if err != nil {
		return err
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	tmp := filepath.Join(filepath.Dir(path), filepath.Base(path)+"."+strconv.FormatInt(time.Now().UnixNano(), 36)+fsutil.TempSuffix)
	p, err := windows.UTF16PtrFromString(tmp)
	if err != nil {
		return err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_WRITE, 0, sa, windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	f := os.NewFile(uintptr(h), tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsutil.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
