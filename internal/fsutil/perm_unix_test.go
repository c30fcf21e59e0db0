//go:build unix

package fsutil_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/fsutil"
)

// trustedDir returns a new directory with mode 0755 owned by the test's user.
func trustedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func write(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("[]"), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func TestCheckTrustedModes(t *testing.T) {
	dir := trustedDir(t)
	for _, c := range []struct {
		perm   os.FileMode
		ok     bool
		reason string
	}{
		{0o600, true, ""}, {0o644, true, ""}, {0o400, true, ""}, {0o755, true, ""},
		{0o666, false, "writable by group or others (mode 0666)"},
		{0o620, false, "mode 0620"},
		{0o602, false, "mode 0602"},
	} {
		p := filepath.Join(dir, "f"+c.perm.String())
		write(t, p, c.perm)
		err := fsutil.CheckTrusted(p)
		if c.ok != (err == nil) {
			t.Errorf("mode %04o: %v", c.perm, err)
			continue
		}
		if err != nil {
			var ue *fsutil.UntrustedError
			if !errors.As(err, &ue) || !errors.Is(err, fsutil.ErrUntrusted) || ue.Path != p || !strings.Contains(err.Error(), c.reason) || !strings.Contains(err.Error(), p) {
				t.Errorf("mode %04o: %v", c.perm, err)
			}
		}
	}
}

func TestCheckTrustedDirectory(t *testing.T) {
	dir := trustedDir(t)
	p := filepath.Join(dir, "keys.json")
	write(t, p, 0o600)
	if err := fsutil.CheckTrusted(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	err := fsutil.CheckTrusted(p)
	var ue *fsutil.UntrustedError
	if !errors.As(err, &ue) || ue.Path != dir || !strings.Contains(err.Error(), "directory writable") {
		t.Errorf("world-writable directory: %v", err)
	}
	if err := os.Chmod(dir, 0o1777); err != nil { // sticky does not make it safe
		t.Fatal(err)
	}
	if err := fsutil.CheckTrusted(p); !errors.Is(err, fsutil.ErrUntrusted) {
		t.Errorf("sticky world-writable directory: %v", err)
	}
}

func TestCheckTrustedSymlink(t *testing.T) {
	good := trustedDir(t)
	bad := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(bad, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bad, 0o777); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(bad, "keys.json")
	write(t, target, 0o600)
	link := filepath.Join(good, "keys.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.CheckTrusted(link); !errors.Is(err, fsutil.ErrUntrusted) || !strings.Contains(err.Error(), bad) {
		t.Errorf("link into a world-writable directory: %v", err)
	}

	// A link in a world-writable directory to a trusted file: whoever can
	// write there can point the link elsewhere.
	trusted := filepath.Join(good, "real.json")
	write(t, trusted, 0o600)
	link = filepath.Join(bad, "link.json")
	if err := os.Symlink(trusted, link); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.CheckTrusted(trusted); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.CheckTrusted(link); !errors.Is(err, fsutil.ErrUntrusted) || !strings.Contains(err.Error(), bad) {
		t.Errorf("link in a world-writable directory: %v", err)
	}
}

func TestCheckTrustedMissing(t *testing.T) {
	err := fsutil.CheckTrusted(filepath.Join(trustedDir(t), "none"))
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, fsutil.ErrUntrusted) {
		t.Errorf("missing: %v", err)
	}
}

// TestCheckTrustedOwner: a file or directory owned by another user (here
// nobody) is refused even with mode 0600. Needs root to chown.
func TestCheckTrustedOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root (CI runs as root)")
	}
	nobody := nobodyUID(t)
	dir := trustedDir(t)
	p := filepath.Join(dir, "keys.json")
	write(t, p, 0o600)
	if err := os.Chown(p, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.CheckTrusted(p); !errors.Is(err, fsutil.ErrUntrusted) || !strings.Contains(err.Error(), fmt.Sprintf("owned by uid %d, not root or uid 0", nobody)) {
		t.Errorf("file owned by nobody: %v", err)
	}
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.CheckTrusted(p); !errors.Is(err, fsutil.ErrUntrusted) || !strings.Contains(err.Error(), dir) {
		t.Errorf("directory owned by nobody: %v", err)
	}
}

// nobodyUID returns the uid of the user nobody (65534 if there is none).
func nobodyUID(t *testing.T) int {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		return 65534
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil || uid == 0 {
		t.Fatalf("user nobody has uid %q", u.Uid)
	}
	return uid
}
