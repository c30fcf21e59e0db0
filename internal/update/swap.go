package update

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kanade/kanade-agent/internal/fsutil"
)

// Suffixes of the files kept beside the executable.
const (
	// SuffixNew is the staged binary, renamed into place by the swap.
	SuffixNew = ".new"
	// SuffixOld is the binary the last update replaced.
	SuffixOld = ".old"
	// SuffixLastGood is a copy of the last binary that ran healthily.
	SuffixLastGood = ".last-good"
	// SuffixFailed is the binary a rollback replaced.
	SuffixFailed = ".failed"
	// stagingInfix names downloads and copies in progress: <exe>.staging-*.
	stagingInfix = ".staging-"
)

// fileOps are the file system steps of a swap, replaceable in tests to
// inject faults.
type fileOps struct {
	rename  func(oldPath, newPath string) error
	syncDir func(dir string) error
}

// realOps are the durable operations of fsutil.
var realOps = fileOps{rename: fsutil.Rename, syncDir: fsutil.SyncDir}

// install moves staged into place as exe and keeps the previous exe as
// aside, in the three steps of the protocol:
//
//  1. staged → <exe>.new
//  2. <exe> → aside
//  3. <exe>.new → <exe>
//
// The running executable is only ever renamed, never overwritten, which
// Windows allows. A failed step undoes the earlier ones in reverse order
// (step 2 by renaming aside back to exe; step 1 by removing <exe>.new) and
// the error is a *SwapError; staged is gone afterwards in every case.
func install(ops fileOps, exe, staged, aside string) error {
	newPath := exe + SuffixNew
	dir := filepath.Dir(exe)
	if err := ops.rename(staged, newPath); err != nil {
		_ = os.Remove(staged)
		return &SwapError{Step: "stage", Err: err}
	}
	if err := ops.rename(exe, aside); err != nil {
		_ = os.Remove(newPath)
		return &SwapError{Step: "aside", Err: err}
	}
	if err := ops.rename(newPath, exe); err != nil {
		undo := ops.rename(aside, exe)
		_ = os.Remove(newPath)
		_ = ops.syncDir(dir)
		return &SwapError{Step: "install", Err: err, UndoErr: undo}
	}
	if err := ops.syncDir(dir); err != nil {
		// Every rename went through (MoveFileEx write-through on Windows);
		// only the directory flush failed. The new binary is in place.
		return fmt.Errorf("update: sync %s after swap: %w", dir, err)
	}
	return nil
}

// createStaging creates an empty staging file <exe>.staging-* beside exe.
func createStaging(exe string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(exe), filepath.Base(exe)+stagingInfix+"*")
	if err != nil {
		return nil, fmt.Errorf("update: create staging file: %w", err)
	}
	return f, nil
}

// finishStaging fsyncs and closes f, then gives it the permission bits of
// exe (so the swapped-in file is executable on Unix).
func finishStaging(f *os.File, exe string) error {
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("update: sync staging file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("update: close staging file: %w", err)
	}
	if runtime.GOOS != "windows" {
		mode := fs.FileMode(0o755)
		if fi, err := os.Stat(exe); err == nil {
			mode = fi.Mode().Perm()
		}
		if err := os.Chmod(f.Name(), mode); err != nil {
			return fmt.Errorf("update: chmod staging file: %w", err)
		}
	}
	return nil
}

// copyToStaging copies src to a new staging file beside exe, fsynced, and
// returns its path and the hex SHA-256 of the bytes copied.
func copyToStaging(src, exe string) (path, digest string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", "", err
	}
	defer in.Close()
	f, err := createStaging(exe)
	if err != nil {
		return "", "", err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	if _, err = io.Copy(io.MultiWriter(f, h), in); err != nil {
		return "", "", fmt.Errorf("update: copy %s: %w", src, err)
	}
	if err = finishStaging(f, exe); err != nil {
		return "", "", err
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// copyAtomic replaces dst with a copy of src (staging file beside exe,
// fsync, durable rename) and returns the hex SHA-256 of the content. dst
// must not be a running executable on Windows.
func copyAtomic(src, dst, exe string) (string, error) {
	tmp, digest, err := copyToStaging(src, exe)
	if err != nil {
		return "", err
	}
	if err := fsutil.RenameDurable(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("update: install %s: %w", dst, err)
	}
	return digest, nil
}

// fileDigest returns the hex SHA-256 of the file at path.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sweepStaging removes staging files and a stray <exe>.new left beside exe
// by an interrupted download or swap. It returns the paths removed.
func sweepStaging(exe string) []string {
	dir, base := filepath.Dir(exe), filepath.Base(exe)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && (strings.HasPrefix(n, base+stagingInfix) || n == base+SuffixNew) {
			p := filepath.Join(dir, n)
			if err := os.Remove(p); err == nil || errors.Is(err, fs.ErrNotExist) {
				removed = append(removed, p)
			}
		}
	}
	return removed
}
