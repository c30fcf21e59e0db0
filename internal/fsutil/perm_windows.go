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
// TrustedInstaller or the current user, and their DACL must exist; the
// file's must grant no write, delete or permission-changing right to
// Everyone, Users, Authenticated Users, INTERACTIVE or Guests, and the
// directory's none that replaces an entry (delete child, delete, write
// DAC, write owner, generic write or all). Adding a file or subdirectory
// to the directory is allowed: %ProgramData% gives Users that right on
// every folder below it, and it cannot change a file that exists (a file
// such a user creates is theirs, and refused by the owner rule). Otherwise
// it returns an *UntrustedError (wrapping ErrUntrusted) naming the path
// and why. A missing file gives an error wrapping fs.ErrNotExist.
func CheckTrusted(path string) error { return check(path, false) }

// CheckPrivate is CheckTrusted for a file holding a secret (a token, an
// nkey seed, a private key): its DACL must also grant no read right to
// Everyone, Users, Authenticated Users, INTERACTIVE or Guests (refused
// with UntrustedError.Readable set). Whoever reads it can act as the agent
// towards the broker. Files below %ProgramData% inherit read for Users, so
// a secret there must have its inheritance cut (icacls /inheritance:r).
func CheckPrivate(path string) error { return check(path, true) }

func check(path string, private bool) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("fsutil: checking %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("fsutil: checking %s: %w", path, err)
	}
	rights := uint32(fileWriteRights)
	if private {
		rights |= fileReadRights
	}
	if err := checkSecurity(abs, rights); err != nil {
		return err
	}
	return checkSecurity(filepath.Dir(abs), dirReplaceRights)
}

// Rights that let a holder change (or, fileReadRights, read) a file, or
// replace the entries of a directory.
const (
	fileWriteRights = windows.FILE_WRITE_DATA | windows.FILE_APPEND_DATA | windows.DELETE |
		windows.WRITE_DAC | windows.WRITE_OWNER | windows.GENERIC_WRITE | windows.GENERIC_ALL
	fileReadRights   = windows.FILE_READ_DATA | windows.GENERIC_READ | windows.GENERIC_ALL
	fileDeleteChild  = 0x40 // FILE_DELETE_CHILD
	dirReplaceRights = fileDeleteChild | windows.DELETE | windows.WRITE_DAC | windows.WRITE_OWNER |
		windows.GENERIC_WRITE | windows.GENERIC_ALL
)

func wellKnown(t windows.WELL_KNOWN_SID_TYPE) *windows.SID {
	sid, err := windows.CreateWellKnownSid(t)
	if err != nil {
		return nil
	}
	return sid
}

// checkSecurity checks path's owner, and that its DACL grants none of
// rights to a broad group.
func checkSecurity(path string, rights uint32) error {
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
	broad := []*windows.SID{
		wellKnown(windows.WinWorldSid), wellKnown(windows.WinBuiltinUsersSid),
		wellKnown(windows.WinAuthenticatedUserSid), wellKnown(windows.WinInteractiveSid),
		wellKnown(windows.WinBuiltinGuestsSid),
	}
	// Of rights, those that change the path (GENERIC_ALL both reads and
	// writes); the others only read it.
	writeRights := rights&^fileReadRights | rights&windows.GENERIC_ALL
	var readable *UntrustedError
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
				if uint32(ace.Mask)&writeRights == 0 {
					if readable == nil { // a later ACE may grant write: that wins
						readable = &UntrustedError{Path: path, Reason: fmt.Sprintf("%s may read it (access mask %#x)", sidName(sid), uint32(ace.Mask)), Readable: true}
					}
					continue
				}
				return &UntrustedError{Path: path, Reason: fmt.Sprintf("%s may write it (access mask %#x)", sidName(sid), uint32(ace.Mask))}
			}
		}
	}
	if readable != nil {
		return readable
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
