//go:build windows

package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// CheckTrusted returns nil if the file at path may be trusted as local
// configuration of a privileged agent. It is best effort on Windows: the
// file and its directory must be owned by SYSTEM, Administrators,
// TrustedInstaller or the current user, and their DACL must exist and grant
// no write, delete or permission-changing right to Everyone, Users,
// Authenticated Users, INTERACTIVE or Guests. Otherwise it returns an
// *UntrustedError (wrapping ErrUntrusted) naming the path and why. A
// missing file gives an error wrapping fs.ErrNotExist.
func CheckTrusted(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("fsutil: checking %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("fsutil: checking %s: %w", path, err)
	}
	if err := checkSecurity(abs, false); err != nil {
		return err
	}
	return checkSecurity(filepath.Dir(abs), true)
}

// Rights that let a holder change a file, or the entries of a directory.
const (
	fileWriteRights = windows.FILE_WRITE_DATA | windows.FILE_APPEND_DATA | windows.DELETE |
		windows.WRITE_DAC | windows.WRITE_OWNER | windows.GENERIC_WRITE | windows.GENERIC_ALL
	fileDeleteChild = 0x40 // FILE_DELETE_CHILD
)

func wellKnown(t windows.WELL_KNOWN_SID_TYPE) *windows.SID {
	sid, err := windows.CreateWellKnownSid(t)
	if err != nil {
		return nil
	}
	return sid
}

func checkSecurity(path string, dir bool) error {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) || errors.Is(err, windows.ERROR_PATH_NOT_FOUND) {
			return fmt.Errorf("fsutil: checking %s: %w", path, fs.ErrNotExist)
		}
		return fmt.Errorf("fsutil: checking %s: %w", path, err)
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return &UntrustedError{Path: path, Reason: "owner unknown"}
	}
	if !trustedOwner(owner) {
		return &UntrustedError{Path: path, Reason: "owned by " + sidName(owner) + ", not SYSTEM, Administrators or the current user"}
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		return &UntrustedError{Path: path, Reason: "no DACL: everyone has full access"}
	}
	rights := uint32(fileWriteRights)
	if dir {
		rights |= fileDeleteChild
	}
	broad := []*windows.SID{
		wellKnown(windows.WinWorldSid), wellKnown(windows.WinBuiltinUsersSid),
		wellKnown(windows.WinAuthenticatedUserSid), wellKnown(windows.WinInteractiveSid),
		wellKnown(windows.WinBuiltinGuestsSid),
	}
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return &UntrustedError{Path: path, Reason: fmt.Sprintf("unreadable ACE %d: %v", i, err)}
		}
		if ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE || ace.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0 {
			continue
		}
		if uint32(ace.Mask)&rights == 0 {
			continue
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		for _, b := range broad {
			if b != nil && sid.Equals(b) {
				return &UntrustedError{Path: path, Reason: fmt.Sprintf("%s may write it (access mask %#x)", sidName(sid), uint32(ace.Mask))}
			}
		}
	}
	return nil
}

func trustedOwner(owner *windows.SID) bool {
	for _, t := range []windows.WELL_KNOWN_SID_TYPE{windows.WinLocalSystemSid, windows.WinBuiltinAdministratorsSid} {
		if s := wellKnown(t); s != nil && owner.Equals(s) {
			return true
		}
	}
	if s := owner.String(); s == "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464" { // TrustedInstaller
		return true
	}
	tok := windows.GetCurrentProcessToken()
	if u, err := tok.GetTokenUser(); err == nil && owner.Equals(u.User.Sid) {
		return true
	}
	return false
}

func sidName(sid *windows.SID) string {
	if account, domain, _, err := sid.LookupAccount(""); err == nil {
		if domain != "" {
			return domain + `\` + account
		}
		return account
	}
	return sid.String()
}
