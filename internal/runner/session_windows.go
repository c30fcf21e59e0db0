//go:build windows

package runner

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/kanade/kanade-agent/internal/winproc"
)

// consoleSession returns the id of the session attached to the physical
// console. Remote Desktop sessions are not considered.
func consoleSession() (uint32, error) {
	id, err := winproc.ConsoleSession()
	if err != nil {
		return 0, fmt.Errorf("%w: no session is attached to the console", ErrNoSession)
	}
	return id, nil
}

// userToken returns the primary token of the user logged on to the console
// session, for run_as user. It needs the agent to run as LocalSystem
// (SE_TCB_NAME), as the Windows service does.
func userToken() (windows.Token, error) {
	id, err := consoleSession()
	if err != nil {
		return 0, err
	}
	t, err := winproc.UserToken(id)
	if err != nil {
		if errors.Is(err, winproc.ErrNoUser) {
			return 0, fmt.Errorf("%w: no user is logged on to console session %d", ErrNoSession, id)
		}
		return 0, fmt.Errorf("%w: run_as user: %w", ErrSpawn, err)
	}
	return t, nil
}

// systemGUIToken returns a primary copy of the agent's own token moved to
// the console session, for run_as system_gui: the process runs as the
// agent's account (LocalSystem) but on the interactive desktop. Changing a
// token's session needs SE_TCB_NAME (LocalSystem).
func systemGUIToken() (windows.Token, error) {
	id, err := consoleSession()
	if err != nil {
		return 0, err
	}
	var own windows.Token
	const access = windows.TOKEN_DUPLICATE | windows.TOKEN_QUERY | windows.TOKEN_ASSIGN_PRIMARY |
		windows.TOKEN_ADJUST_DEFAULT | windows.TOKEN_ADJUST_SESSIONID
	if err := windows.OpenProcessToken(windows.CurrentProcess(), access, &own); err != nil {
		return 0, fmt.Errorf("%w: run_as system_gui: OpenProcessToken: %w", ErrSpawn, err)
	}
	defer own.Close()
	var t windows.Token
	if err := windows.DuplicateTokenEx(own, windows.MAXIMUM_ALLOWED, nil, windows.SecurityIdentification, windows.TokenPrimary, &t); err != nil {
		return 0, fmt.Errorf("%w: run_as system_gui: DuplicateTokenEx: %w", ErrSpawn, err)
	}
	if err := windows.SetTokenInformation(t, windows.TokenSessionId, (*byte)(unsafe.Pointer(&id)), uint32(unsafe.Sizeof(id))); err != nil {
		t.Close()
		return 0, fmt.Errorf("%w: run_as system_gui: set session %d on token (the agent must run as LocalSystem): %w", ErrSpawn, id, err)
	}
	return t, nil
}

// grantRead adds an ACE to path's DACL that lets the token's user read and
// execute it, so that a script staged by the agent (in a directory the user
// cannot read) can be run as that user.
func grantRead(path string, token windows.Token) error {
	u, err := token.GetTokenUser()
	if err != nil {
		return fmt.Errorf("%w: run_as user: token user: %w", ErrStage, err)
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("%w: run_as user: read ACL of %s: %w", ErrStage, path, err)
	}
	old, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("%w: run_as user: read ACL of %s: %w", ErrStage, path, err)
	}
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: windows.GENERIC_READ | windows.GENERIC_EXECUTE,
		AccessMode:        windows.GRANT_ACCESS,
		Inheritance:       windows.NO_INHERITANCE,
		Trustee: windows.TRUSTEE{
			TrusteeForm:  windows.TRUSTEE_IS_SID,
			TrusteeType:  windows.TRUSTEE_IS_USER,
			TrusteeValue: windows.TrusteeValueFromSID(u.User.Sid),
		},
	}}, old)
	if err != nil {
		return fmt.Errorf("%w: run_as user: build ACL: %w", ErrStage, err)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION, nil, nil, acl, nil); err != nil {
		return fmt.Errorf("%w: run_as user: set ACL of %s: %w", ErrStage, path, err)
	}
	return nil
}
