//go:build windows

package fsutil_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/internal/natstest"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// underWine reports whether the test runs under Wine, which has a
// HKLM\Software\Wine key.
func underWine() bool {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `Software\Wine`, registry.QUERY_VALUE)
	if err != nil {
		return false
	}
	k.Close()
	return true
}

// setDACL replaces path's DACL (protected from inheritance) by sddl's.
func setDACL(t *testing.T, path, sddl string) {
	t.Helper()
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckTrustedWindows: a file only SYSTEM, Administrators and its owner
// can write is trusted; one Everyone or Users can write is refused.
func TestCheckTrustedWindows(t *testing.T) {
	dir := natstest.TempDir(t)
	p := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(p, []byte("[]"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Owner (OW), SYSTEM, Administrators: full; Users: read.
	const private = "D:P(A;;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)(A;;FR;;;BU)"
	setDACL(t, dir, private+"(A;OICIIO;FA;;;WD)") // inherit-only: not the directory's own
	setDACL(t, p, private)
	if err := fsutil.CheckTrusted(p); err != nil {
		t.Fatalf("private file: %v", err)
	}
	aces := []string{"(A;;FA;;;WD)", "(A;;FW;;;BU)", "(A;;0x2;;;AU)", "(A;;WD;;;WD)"}
	if underWine() {
		// Wine keeps no DACL: it derives one from the Unix mode, so only
		// "Everyone may write" (mode o+w) can be set and seen there.
		t.Logf("under Wine: checking only %s", aces[0])
		aces = aces[:1]
	}
	for _, ace := range aces {
		setDACL(t, p, private+ace)
		err := fsutil.CheckTrusted(p)
		var ue *fsutil.UntrustedError
		if !errors.As(err, &ue) || ue.Path != p || !strings.Contains(err.Error(), "may write it") {
			t.Errorf("with %s: %v", ace, err)
		}
	}
	setDACL(t, p, private)
	dirACE := "(A;;0x40;;;WD)" // Everyone may delete children
	if underWine() {
		dirACE = "(A;;FA;;;WD)"
	}
	setDACL(t, dir, private+dirACE)
	if err := fsutil.CheckTrusted(p); !errors.Is(err, fsutil.ErrUntrusted) {
		t.Errorf("directory others may change: %v", err)
	}
	setDACL(t, dir, private)
	if err := fsutil.CheckTrusted(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

// TestCheckPrivateWindows: a secret file that Everyone or Users may read is
// refused by CheckPrivate with Readable set (CheckTrusted accepts it); one
// they may write is refused without it; a directory where Users may only
// add files (as every folder below %ProgramData% by default) is trusted,
// one where they may delete entries is not.
func TestCheckPrivateWindows(t *testing.T) {
	dir := natstest.TempDir(t)
	p := filepath.Join(dir, "agent.creds")
	if err := os.WriteFile(p, []byte("seed"), 0o600); err != nil {
		t.Fatal(err)
	}
	const private = "D:P(A;;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)"
	setDACL(t, dir, private)
	setDACL(t, p, private)
	readable := func(what string) {
		t.Helper()
		if err := fsutil.CheckTrusted(p); err != nil {
			t.Errorf("%s, CheckTrusted: %v, want it trusted (readable is not writable)", what, err)
		}
		err := fsutil.CheckPrivate(p)
		var ue *fsutil.UntrustedError
		if !errors.As(err, &ue) || ue.Path != p || !ue.Readable || !strings.Contains(err.Error(), "may read it") {
			t.Errorf("%s, CheckPrivate: %v, want a refusal saying it may be read", what, err)
		}
	}
	if underWine() {
		// Wine keeps no DACL: every file it makes shows Everyone read, and
		// SetNamedSecurityInfo changes nothing.
		readable("under Wine")
		setDACL(t, p, private+"(A;;FA;;;WD)")
		err := fsutil.CheckPrivate(p)
		var ue *fsutil.UntrustedError
		if !errors.As(err, &ue) || ue.Readable || !strings.Contains(err.Error(), "may write it") {
			t.Errorf("Everyone may write, under Wine: %v, want a refusal saying it may be written", err)
		}
		t.Log("under Wine: only the Everyone ACEs its Unix mode gives are checked")
		return
	}
	if err := fsutil.CheckPrivate(p); err != nil {
		t.Fatalf("private secret: %v", err)
	}
	for _, ace := range []string{"(A;;FR;;;WD)", "(A;;FR;;;BU)", "(A;;GR;;;AU)"} {
		setDACL(t, p, private+ace)
		readable("with " + ace)
	}
	// Read first, write after: the write wins.
	setDACL(t, p, private+"(A;;FR;;;BU)(A;;FW;;;WD)")
	var ue *fsutil.UntrustedError
	if err := fsutil.CheckPrivate(p); !errors.As(err, &ue) || ue.Readable {
		t.Errorf("readable and writable: %v, want the write refused", err)
	}
	setDACL(t, p, private)
	setDACL(t, dir, private+"(A;CI;0x6;;;BU)") // add file, add subdirectory: %ProgramData%'s default
	if err := fsutil.CheckPrivate(p); err != nil {
		t.Errorf("directory Users may add files to: %v, want it trusted", err)
	}
	setDACL(t, dir, private+"(A;;0x40;;;BU)") // delete child
	if err := fsutil.CheckPrivate(p); !errors.Is(err, fsutil.ErrUntrusted) {
		t.Errorf("directory Users may delete entries of: %v, want it refused", err)
	}
}
