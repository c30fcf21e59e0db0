//go:build windows

package daemon

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// dataDirSDDL makes Administrators the owner and grants full control to
// SYSTEM and Administrators only, inherited by everything below, with
// inheritance from the parent (%ProgramData% lets every user create and
// read files) cut off.
const dataDirSDDL = "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// secureDataDir restricts dir to SYSTEM and Administrators when the process
// is elevated (as a service it runs as SYSTEM). The agent stages scripts
// there and runs them as SYSTEM, so a user who could write into it could
// run code as SYSTEM. It reports whether it applied the restriction.
func secureDataDir(dir string) (bool, error) {
	if !windows.GetCurrentProcessToken().IsElevated() {
		return false, nil
	}
	sd, err := windows.SecurityDescriptorFromString(dataDirSDDL)
	if err != nil {
		return false, fmt.Errorf("data directory ACL: %w", err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return false, fmt.Errorf("data directory ACL: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return false, fmt.Errorf("data directory ACL: %w", err)
	}
	err = windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION,
		owner, nil, dacl, nil)
	if err != nil {
		return false, fmt.Errorf("data directory ACL on %s: %w", dir, err)
	}
	return true, nil
}
