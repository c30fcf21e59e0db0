//go:build unix

package privdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Ensure creates dir (and its missing parents, with mode 0755) private to
// the agent, or checks and, where allowed, resets an existing one; see the
// package documentation for the rules.
func Ensure(dir string) (Outcome, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return 0, fmt.Errorf("privdir: %w", err)
	}
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		return Created, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return 0, fmt.Errorf("privdir: %w", err)
	}
	// Open without following a symbolic link, and check and fix what was
	// opened, so that the path cannot be swapped in between.
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR):
		// Linux reports a symbolic link as ENOTDIR under O_DIRECTORY.
		if fi, lerr := os.Lstat(dir); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return 0, fmt.Errorf("%w: %s is a symbolic link, which is not followed; use the real directory", ErrUnsafe, dir)
		}
		return 0, fmt.Errorf("%w: %s is not a directory", ErrUnsafe, dir)
	case err != nil:
		return 0, fmt.Errorf("privdir: open %s: %w", dir, err)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("privdir: stat %s: %w", dir, err)
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		return 0, fmt.Errorf("%w: %s is owned by uid %d, not by the agent's uid %d; remove it (another user may have created it) and start again",
			ErrUnsafe, dir, st.Uid, euid)
	}
	perm := uint32(st.Mode) & 0o7777
	if perm&0o022 != 0 {
		return 0, fmt.Errorf("%w: %s is writable by group or others (mode %04o); check its contents, then remove it or chmod 0700 it",
			ErrUnsafe, dir, perm)
	}
	if perm == 0o700 {
		return Existed, nil
	}
	if err := syscall.Fchmod(fd, 0o700); err != nil {
		return 0, fmt.Errorf("privdir: chmod 0700 %s: %w", dir, err)
	}
	return Reset, nil
}

// MkdirFresh creates a new directory named prefix followed by 32 random hex
// digits in parent, with mode 0700, and returns its path. It fails if the
// name exists (whatever it is: a symbolic link is not followed).
func MkdirFresh(parent, prefix string) (string, error) {
	dir := filepath.Join(parent, randomName(prefix))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("privdir: %w", err)
	}
	return dir, nil
}
