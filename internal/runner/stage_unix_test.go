//go:build unix

package runner

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/privdir"
)

// nobodyIDs returns the uid and gid of the user nobody; it skips the test
// when not root (only root can give a file to another user).
func nobodyIDs(t *testing.T) (int, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make files owned by another user (CI runs as root)")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// stagedSpec returns a sh spec too large for the command line, so that it
// is staged, which touches marker when it runs and prints the mode and
// owner of its own file and folder.
func stagedSpec(stageDir, marker string) Spec {
	s := sh(": " + strings.Repeat("x", maxArgScript) + "\n" +
		`touch '` + marker + `'; ls -nd "$(dirname "$0")" "$0" | awk '{print $1, $3}'`)
	s.StageDir = stageDir
	return s
}

// TestStageDirPlantedByOtherUser: another user created the staging
// directory, world-writable, before the agent; the agent must not stage
// into it (it could swap the file before it runs as root) and runs nothing.
func TestStageDirPlantedByOtherUser(t *testing.T) {
	uid, gid := nobodyIDs(t)
	base := t.TempDir()
	stage := filepath.Join(base, "staging")
	if err := os.Mkdir(stage, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(stage, 0o777)
	if err := os.Chown(stage, uid, gid); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(base, "ran")
	r := Run(context.Background(), stagedSpec(stage, marker))
	if !errors.Is(r.Err, ErrStage) || !errors.Is(r.Err, privdir.ErrUnsafe) || !strings.Contains(r.Err.Error(), "owned by uid") {
		t.Fatalf("%+v", r)
	}
	t.Log(r.Err)
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the script ran")
	}
	if left, _ := os.ReadDir(stage); len(left) != 0 {
		t.Fatalf("staged into the planted directory: %v", left)
	}
}

// TestStageDirOwnWorldWritableRefused: the agent's own staging directory
// has been made world-writable; what is in it cannot be trusted.
func TestStageDirOwnWorldWritableRefused(t *testing.T) {
	base := t.TempDir()
	stage := filepath.Join(base, "staging")
	os.Mkdir(stage, 0o700)
	os.Chmod(stage, 0o777)
	marker := filepath.Join(base, "ran")
	r := Run(context.Background(), stagedSpec(stage, marker))
	if !errors.Is(r.Err, privdir.ErrUnsafe) || !strings.Contains(r.Err.Error(), "writable by group or others") {
		t.Fatalf("%+v", r)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the script ran")
	}
}

// TestStageDirSymlinkNotFollowed: a symbolic link planted at the staging
// path (by another user when root runs the test) is not followed: nothing
// is written where it points and nothing runs.
func TestStageDirSymlinkNotFollowed(t *testing.T) {
	base := t.TempDir()
	target := filepath.Join(base, "elsewhere")
	os.Mkdir(target, 0o700)
	stage := filepath.Join(base, "staging")
	if err := os.Symlink(target, stage); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		uid, gid := nobodyIDs(t)
		os.Chmod(target, 0o777)
		os.Chown(target, uid, gid)
		if err := os.Lchown(stage, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	marker := filepath.Join(base, "ran")
	r := Run(context.Background(), stagedSpec(stage, marker))
	if !errors.Is(r.Err, privdir.ErrUnsafe) || !strings.Contains(r.Err.Error(), "symbolic link") {
		t.Fatalf("%+v", r)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the script ran")
	}
	if left, _ := os.ReadDir(target); len(left) != 0 {
		t.Fatalf("followed the link: %v", left)
	}
}

// TestStagedFilePrivate: a staged script runs from a fresh 0700 folder of
// the agent's uid, from a 0600 file, and the folder goes afterwards; a
// staging directory of the agent's own with a wider mode is reset to 0700.
func TestStagedFilePrivate(t *testing.T) {
	base := t.TempDir()
	stage := filepath.Join(base, "staging")
	os.Mkdir(stage, 0o700)
	os.Chmod(stage, 0o755)
	marker := filepath.Join(base, "ran")
	r := Run(context.Background(), stagedSpec(stage, marker))
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("%+v stderr %q", r, r.Stderr)
	}
	// ls -nd prints the folder, then the file: mode (perhaps followed by
	// an ACL or SELinux mark) and uid.
	lines := strings.Split(strings.TrimSpace(string(r.Stdout)), "\n")
	owner := strconv.Itoa(os.Geteuid())
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "drwx------") || !strings.HasPrefix(lines[1], "-rw-------") ||
		!strings.HasSuffix(lines[0], " "+owner) || !strings.HasSuffix(lines[1], " "+owner) {
		t.Fatalf("staged folder and file: %q, want drwx------ and -rw------- owned by uid %s", r.Stdout, owner)
	}
	if fi, _ := os.Stat(stage); fi.Mode().Perm() != 0o700 {
		t.Fatalf("staging dir mode %v, want reset to 0700", fi.Mode())
	}
	if left, _ := os.ReadDir(stage); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}
