//go:build windows

package privdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ownSID returns the SID of the account the process runs as.
func ownSID() (*windows.SID, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("privdir: token user: %w", err)
	}
	return u.User.Sid.Copy()
}

// ensureSDDL returns the security descriptor of a directory made by Ensure:
// a protected DACL granting full control, inherited by files and folders
// below, to SYSTEM, Administrators and own when it is neither.
func ensureSDDL(own *windows.SID) string {
	s := "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
	if !own.IsWellKnown(windows.WinLocalSystemSid) && !own.IsWellKnown(windows.WinBuiltinAdministratorsSid) {
		s += "(A;OICI;FA;;;" + own.String() + ")"
	}
	return s
}

// freshSDDL returns the security descriptor of a directory made by
// MkdirFresh: a protected DACL granting full control to SYSTEM and own.
func freshSDDL(own *windows.SID) string {
	s := "D:P(A;OICI;FA;;;SY)"
	if !own.IsWellKnown(windows.WinLocalSystemSid) {
		s += "(A;OICI;FA;;;" + own.String() + ")"
	}
	return s
}

// createDir creates dir with the security descriptor sddl in one step
// (CreateDirectory with SECURITY_ATTRIBUTES); it fails with
// ERROR_ALREADY_EXISTS when the name exists.
func createDir(dir, sddl string) error {
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return fmt.Errorf("privdir: security descriptor %q: %w", sddl, err)
	}
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return fmt.Errorf("privdir: %q: %w", dir, err)
	}
	sa := &windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd}
	return windows.CreateDirectory(p, sa)
}

// trusted reports whether sid may own or have access to a private
// directory: SYSTEM, Administrators or own.
func trusted(sid, own *windows.SID) bool {
	return sid != nil && (sid.IsWellKnown(windows.WinLocalSystemSid) ||
		sid.IsWellKnown(windows.WinBuiltinAdministratorsSid) || sid.Equals(own))
}

// daclPrivate reports whether sd's DACL is protected from inheritance and
// allows access only to trusted accounts (deny entries are fine). A missing
// or NULL DACL, or an entry of another type, is not private.
func daclPrivate(sd *windows.SECURITY_DESCRIPTOR, own *windows.SID) bool {
	ctl, _, err := sd.Control()
	if err != nil || ctl&windows.SE_DACL_PRESENT == 0 || ctl&windows.SE_DACL_PROTECTED == 0 {
		return false
	}
	acl, _, err := sd.DACL()
	if err != nil || acl == nil {
		return false // a NULL DACL grants everyone everything
	}
	for i := range uint32(acl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(acl, i, &ace); err != nil {
			return false
		}
		switch ace.Header.AceType {
		case windows.ACCESS_DENIED_ACE_TYPE:
		case windows.ACCESS_ALLOWED_ACE_TYPE:
			if !trusted((*windows.SID)(unsafe.Pointer(&ace.SidStart)), own) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// account names sid for an error message: "DOMAIN\name (S-1-...)".
func account(sid *windows.SID) string {
	if sid == nil {
		return "no owner"
	}
	if name, dom, _, err := sid.LookupAccount(""); err == nil {
		if dom != "" {
			name = dom + `\` + name
		}
		return name + " (" + sid.String() + ")"
	}
	return sid.String()
}

// Ensure creates dir (and its missing parents, with inherited access)
// private to the agent, or checks and, where allowed, resets an existing
// one; see the package documentation for the rules.
func Ensure(dir string) (Outcome, error) {
	own, err := ownSID()
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return 0, fmt.Errorf("privdir: %w", err)
	}
	err = createDir(dir, ensureSDDL(own))
	if err == nil {
		return Created, nil
	}
	if !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		return 0, fmt.Errorf("privdir: create %s: %w", dir, err)
	}
	// Checked by name here and again on the handle below, which is what
	// counts on Windows (Wine reports a symbolic link only by name).
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
		return 0, fmt.Errorf("%w: %s is a junction or symbolic link, which is not followed; remove it", ErrUnsafe, dir)
	}
	p, _ := windows.UTF16PtrFromString(dir) // createDir checked it
	// The handle is opened on the path itself, not on a reparse point's
	// target, and without FILE_SHARE_DELETE: while it is open the directory
	// cannot be renamed or replaced.
	h, err := windows.CreateFile(p, windows.READ_CONTROL, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return 0, fmt.Errorf("%w: cannot open %s to check its owner: %w", ErrUnsafe, dir, err)
	}
	defer windows.CloseHandle(h)
	var fi windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &fi); err != nil {
		return 0, fmt.Errorf("privdir: %s: %w", dir, err)
	}
	if fi.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		return 0, fmt.Errorf("%w: %s is a junction or symbolic link, which is not followed; remove it", ErrUnsafe, dir)
	}
	if fi.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY == 0 {
		return 0, fmt.Errorf("%w: %s is not a directory", ErrUnsafe, dir)
	}
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return 0, fmt.Errorf("privdir: security of %s: %w", dir, err)
	}
	owner, _, err := sd.Owner()
	if err != nil || !trusted(owner, own) {
		return 0, fmt.Errorf("%w: %s is owned by %s, not by SYSTEM, Administrators or the agent's account %s; another user may have created it: remove it and start again",
			ErrUnsafe, dir, account(owner), account(own))
	}
	if daclPrivate(sd, own) {
		return Existed, nil
	}
	want, err := windows.SecurityDescriptorFromString(ensureSDDL(own))
	if err != nil {
		return 0, fmt.Errorf("privdir: %w", err)
	}
	dacl, _, err := want.DACL()
	if err != nil {
		return 0, fmt.Errorf("privdir: %w", err)
	}
	// By name so that the inheritable entries reach what is inside.
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return 0, fmt.Errorf("privdir: reset the access of %s: %w", dir, err)
	}
	return Reset, nil
}

// MkdirFresh creates a new directory named prefix followed by 32 random hex
// digits in parent, in one step with a protected DACL that grants full
// control to SYSTEM and the agent's own account only, and returns its path.
// It fails if the name exists.
func MkdirFresh(parent, prefix string) (string, error) {
	own, err := ownSID()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(parent, randomName(prefix))
	if err := createDir(dir, freshSDDL(own)); err != nil {
		return "", fmt.Errorf("privdir: create %s: %w", dir, err)
	}
	return dir, nil
}
