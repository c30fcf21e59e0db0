//go:build windows

package privdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// underWine reports whether the test runs under Wine.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// wineNoDACL is why DACL read-back is not checked under Wine.
const wineNoDACL = "Wine does not keep a file's security descriptor: GetSecurityInfo returns one made from the Unix mode (owner = the user, SYSTEM and the user full control, Everyone read, not protected), whatever CreateDirectory or SetSecurityInfo were given"

func sdOf(t *testing.T, p string) *windows.SECURITY_DESCRIPTOR {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(p, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

func TestWinDaclPrivate(t *testing.T) {
	own, err := ownSID()
	if err != nil {
		t.Fatal(err)
	}
	o := own.String()
	for _, tc := range []struct {
		sddl string
		want bool
	}{
		{ensureSDDL(own), true},
		{freshSDDL(own), true},
		{"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)", true},
		{"D:P(A;OICI;FA;;;" + o + ")", true},
		{"D:P(A;OICI;FA;;;SY)(D;OICI;FA;;;WD)", true},                   // deny entries are fine
		{"D:(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)", false},                   // not protected: inherits from the parent
		{"D:P(A;OICI;FA;;;SY)(A;OICI;0x1200a9;;;WD)", false},            // Everyone may read
		{"D:P(A;OICI;FA;;;SY)(A;OICI;0x1301bf;;;BU)", false},            // Users may write
		{"D:P(A;OICIIO;FA;;;CO)(A;OICI;FA;;;SY)", false},                // CREATOR OWNER
		{"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;S-1-5-21-1-2-3-1001)", false}, // another user
		{"D:P", true},                  // empty protected DACL: no one but the owner
		{"O:SY", false},                // no DACL at all
		{"D:NO_ACCESS_CONTROL", false}, // NULL DACL: everyone
	} {
		sd, err := windows.SecurityDescriptorFromString(tc.sddl)
		if err != nil {
			t.Errorf("%s: %v", tc.sddl, err)
			continue
		}
		if got := daclPrivate(sd, own); got != tc.want {
			t.Errorf("daclPrivate(%s) = %v, want %v", tc.sddl, got, tc.want)
		}
	}
}

func TestWinTrusted(t *testing.T) {
	own, err := ownSID()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sid  string
		want bool
	}{
		{"S-1-5-18", true},     // SYSTEM
		{"S-1-5-32-544", true}, // Administrators
		{own.String(), true},
		{"S-1-5-32-545", false}, // Users
		{"S-1-1-0", false},      // Everyone
		{"S-1-5-21-1-2-3-1001", false},
	} {
		sid, err := windows.StringToSid(tc.sid)
		if err != nil {
			t.Fatal(err)
		}
		if got := trusted(sid, own); got != tc.want {
			t.Errorf("trusted(%s) = %v", tc.sid, got)
		}
	}
	if trusted(nil, own) {
		t.Error("nil owner trusted")
	}
}

func TestWinEnsure(t *testing.T) {
	dir := filepath.Join(natstest.TempDir(t), "a", "data")
	got, err := Ensure(dir)
	if err != nil || got != Created {
		t.Fatalf("Ensure = %v, %v; want created", got, err)
	}
	got, err = Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if underWine() {
		// Under Wine the DACL read back is never the one set: the
		// second call resets it (and would on every call).
		t.Logf("second Ensure under Wine: %v (%s)", got, wineNoDACL)
		if got != Existed && got != Reset {
			t.Fatalf("second Ensure = %v", got)
		}
		return
	}
	if got != Existed {
		t.Fatalf("second Ensure = %v, want existed", got)
	}
	own, _ := ownSID()
	if sd := sdOf(t, dir); !daclPrivate(sd, own) {
		t.Fatalf("created with %s", sd)
	}
	// A file created inside inherits the private DACL.
	f := filepath.Join(dir, "x")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if sd := sdOf(t, f); !strings.Contains(sd.String(), "(A;ID;FA;;;SY)") || strings.Contains(sd.String(), ";;;WD)") || strings.Contains(sd.String(), ";;;BU)") {
		t.Fatalf("file inside has %s", sd)
	}
}

// TestWinEnsureResetsInheritedACL: a directory made the ordinary way (as
// MkdirAll did) inherits its parent's DACL; Ensure replaces it.
func TestWinEnsureResetsInheritedACL(t *testing.T) {
	dir := filepath.Join(natstest.TempDir(t), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := Ensure(dir)
	if err != nil || got != Reset {
		t.Fatalf("Ensure = %v, %v; want reset", got, err)
	}
	if underWine() {
		t.Skip("DACL after the reset not checked: " + wineNoDACL)
	}
	own, _ := ownSID()
	if sd := sdOf(t, dir); !daclPrivate(sd, own) {
		t.Fatalf("after reset: %s", sd)
	}
}

func TestWinEnsureRefuses(t *testing.T) {
	base := natstest.TempDir(t)
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(file); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Ensure(file) = %v", err)
	}
	t.Run("symlink", func(t *testing.T) {
		target := filepath.Join(base, "target")
		os.Mkdir(target, 0o700)
		link := filepath.Join(base, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Skipf("cannot create a directory symbolic link here (needs SeCreateSymbolicLinkPrivilege or developer mode on Windows): %v", err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			if underWine() {
				t.Skipf("Wine's CreateSymbolicLinkW reports success, but the directory link it made is not seen as a reparse point (Lstat: %v), so there is nothing to refuse", err)
			}
			t.Fatalf("Lstat(link) does not report a symbolic link: %v", err)
		}
		if _, err := Ensure(link); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "junction or symbolic link") {
			t.Fatalf("Ensure(link) = %v", err)
		}
	})
	t.Run("owned by Users", func(t *testing.T) {
		dir := filepath.Join(base, "planted")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		users, _ := windows.StringToSid("S-1-5-32-545")
		setOwner(t, dir, users)
		if _, err := Ensure(dir); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "owned by") {
			t.Fatalf("Ensure(dir owned by Users) = %v", err)
		}
	})
}

// setOwner makes sid the owner of p, which needs SeRestorePrivilege (held
// by elevated administrators). It skips the test when that cannot be done
// or does not hold; the owner rule is then covered by TestWinTrusted,
// which Ensure applies to the owner GetSecurityInfo reports.
func setOwner(t *testing.T, p string, sid *windows.SID) {
	t.Helper()
	if underWine() {
		t.Skip("Wine cannot give a file another owner: it keeps no security descriptor and reports the Unix owner's SID (the test's own account) for every file, and has no second account")
	}
	var tok windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_ADJUST_PRIVILEGES|windows.TOKEN_QUERY, &tok); err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	var luid windows.LUID
	name, _ := windows.UTF16PtrFromString("SeRestorePrivilege")
	if err := windows.LookupPrivilegeValue(nil, name, &luid); err != nil {
		t.Fatal(err)
	}
	tp := windows.Tokenprivileges{PrivilegeCount: 1}
	tp.Privileges[0] = windows.LUIDAndAttributes{Luid: luid, Attributes: windows.SE_PRIVILEGE_ENABLED}
	if err := windows.AdjustTokenPrivileges(tok, false, &tp, 0, nil, nil); err != nil || windows.GetLastError() == windows.ERROR_NOT_ALL_ASSIGNED {
		t.Skipf("cannot enable SeRestorePrivilege to give %s another owner (run the test elevated): %v", p, err)
	}
	if err := windows.SetNamedSecurityInfo(p, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION, sid, nil, nil, nil); err != nil {
		t.Skipf("cannot give %s another owner: %v", p, err)
	}
	if o, _, _ := sdOf(t, p).Owner(); !o.Equals(sid) {
		t.Skipf("owner of %s is %v after setting it to %v", p, o, sid)
	}
}

func TestWinMkdirFresh(t *testing.T) {
	parent := natstest.TempDir(t)
	a, err := MkdirFresh(parent, "run-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(a)
	if filepath.Dir(a) != parent || !strings.HasPrefix(filepath.Base(a), "run-") || len(filepath.Base(a)) != 36 {
		t.Fatal(a)
	}
	if err := createDir(a, freshSDDL(mustOwn(t))); !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		t.Fatalf("creating an existing name: %v", err)
	}
	if underWine() {
		t.Skip("DACL not checked: " + wineNoDACL)
	}
	sd := sdOf(t, a)
	if !daclPrivate(sd, mustOwn(t)) || strings.Contains(sd.String(), ";;;BA)") {
		t.Fatalf("fresh dir has %s", sd)
	}
}

func mustOwn(t *testing.T) *windows.SID {
	own, err := ownSID()
	if err != nil {
		t.Fatal(err)
	}
	return own
}
