//go:build unix

package privdir

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// nobody returns the uid and gid of the user nobody; it skips the test
// when not root (only root can give a file away).
func nobody(t *testing.T) (int, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory owned by another user (CI runs as root)")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

func TestEnsureCreatesPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "data")
	got, err := Ensure(dir)
	if err != nil || got != Created {
		t.Fatalf("Ensure = %v, %v; want created", got, err)
	}
	if m := mode(t, dir); !m.IsDir() || m.Perm() != 0o700 {
		t.Fatalf("mode %v, want drwx------", m)
	}
	if got, err := Ensure(dir); err != nil || got != Existed {
		t.Fatalf("second Ensure = %v, %v; want existed", got, err)
	}
}

func TestEnsureResetsOwnReadableDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o750) // as an older agent made it
	if got, err := Ensure(dir); err != nil || got != Reset {
		t.Fatalf("Ensure = %v, %v; want reset", got, err)
	}
	if m := mode(t, dir); m.Perm() != 0o700 {
		t.Fatalf("mode %v after reset", m)
	}
}

func TestEnsureRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		make       func(t *testing.T, p string)
	}{
		{"world writable", "writable by group or others", func(t *testing.T, p string) {
			os.Mkdir(p, 0o700)
			os.Chmod(p, 0o777)
		}},
		{"group writable", "writable by group or others", func(t *testing.T, p string) {
			os.Mkdir(p, 0o700)
			os.Chmod(p, 0o770)
		}},
		{"not a directory", "not a directory", func(t *testing.T, p string) {
			os.WriteFile(p, nil, 0o600)
		}},
		{"symlink to own private dir", "symbolic link", func(t *testing.T, p string) {
			target := p + ".real"
			os.Mkdir(target, 0o700)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}},
		{"owned by nobody", "owned by uid", func(t *testing.T, p string) {
			uid, gid := nobody(t)
			os.Mkdir(p, 0o700)
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}},
		{"owned by nobody, mode 0777", "owned by uid", func(t *testing.T, p string) {
			uid, gid := nobody(t)
			os.Mkdir(p, 0o700)
			os.Chmod(p, 0o777)
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "data")
			tc.make(t, p)
			before := mode(t, p)
			got, err := Ensure(p)
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Ensure = %v, %v; want ErrUnsafe with %q", got, err, tc.want)
			}
			t.Log(err)
			if after := mode(t, p); after != before {
				t.Fatalf("mode changed from %v to %v", before, after)
			}
		})
	}
}

func TestMkdirFresh(t *testing.T) {
	parent := t.TempDir()
	a, err := MkdirFresh(parent, "run-")
	if err != nil {
		t.Fatal(err)
	}
	b, err := MkdirFresh(parent, "run-")
	if err != nil {
		t.Fatal(err)
	}
	if a == b || filepath.Dir(a) != parent || !strings.HasPrefix(filepath.Base(a), "run-") || len(filepath.Base(a)) != 4+32 {
		t.Fatalf("names %q %q", a, b)
	}
	fi, err := os.Lstat(a)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || int(fi.Sys().(*syscall.Stat_t).Uid) != os.Geteuid() {
		t.Fatalf("%v %v", fi.Mode(), err)
	}
	if _, err := MkdirFresh(filepath.Join(parent, "missing"), "run-"); err == nil {
		t.Fatal("MkdirFresh in a missing parent succeeded")
	}
}
