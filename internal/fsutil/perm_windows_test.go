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
