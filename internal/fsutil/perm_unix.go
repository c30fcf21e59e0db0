//go:build unix

package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// CheckTrusted returns nil if the file at path may be trusted as local
// configuration of a privileged agent: the file (after symbolic links) and
// the directories holding it (the one path names and, for a link, the
// target's) are owned by root or by the current effective user, and none is
// writable by group or others. Otherwise it returns an *UntrustedError
// (wrapping ErrUntrusted) naming the path and why. A missing file gives an
// error wrapping fs.ErrNotExist; other failures to look are returned
// wrapped with the path.
func CheckTrusted(path string) error {
	if _, err := os.Lstat(path); err != nil {
		return fmt.Errorf("fsutil: checking %s: %w", path, err)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("fsutil: checking %s: %w", path, err)
	}
	if err := checkOwnerMode(real); err != nil {
		return err
	}
	dirs := []string{filepath.Dir(real)}
	if d := filepath.Dir(path); d != dirs[0] {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := checkOwnerMode(d); err != nil {
			return err
		}
	}
	return nil
}

// CheckPrivate is CheckTrusted for a file holding a secret (a token, an
// nkey seed, a private key): the file must also not be readable by group
// or others (mode & 0044 == 0), as ssh demands of a private key. Whoever
// reads it can act as the agent towards the broker.
func CheckPrivate(path string) error {
	if err := CheckTrusted(path); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("fsutil: checking %s: %w", path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return &UntrustedError{Path: path, Reason: fmt.Sprintf("secret readable by group or others (mode %04o)", perm), Readable: true}
	}
	return nil
}

// checkOwnerMode checks the owner and mode of path itself.
func checkOwnerMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("fsutil: checking %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &UntrustedError{Path: path, Reason: "owner unknown"}
	}
	euid := os.Geteuid()
	if st.Uid != 0 && int64(st.Uid) != int64(euid) {
		return &UntrustedError{Path: path, Reason: fmt.Sprintf("owned by uid %d, not root or uid %d", st.Uid, euid)}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		what := "file"
		if fi.IsDir() {
			what = "directory"
		}
		return &UntrustedError{Path: path, Reason: fmt.Sprintf("%s writable by group or others (mode %04o)", what, perm)}
	}
	return nil
}
