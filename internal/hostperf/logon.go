package hostperf

// Logon is the most recent interactive sign-in of the machine, for the
// Heartbeat's last_logon_user and last_logon_display_name.
type Logon struct {
	// User is the account name, DOMAIN\user on Windows; empty when unknown.
	User string
	// DisplayName is the account's friendly name; empty when unknown.
	DisplayName string
}

// logonUIKey is the registry key, under HKEY_LOCAL_MACHINE, where the
// Windows sign-in screen records the last account that signed in.
const logonUIKey = `SOFTWARE\Microsoft\Windows\CurrentVersion\Authentication\LogonUI`

// LastLogon returns the most recent interactive sign-in. On Windows it reads
// the LastLoggedOnUser and LastLoggedOnDisplayName values of
// HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Authentication\LogonUI,
// which the sign-in screen keeps after sign-out, so they stay set while
// nobody is signed in; a missing value is an empty field, not an error. The
// read costs two registry queries, cheap enough for every heartbeat.
//
// Elsewhere it returns an empty Logon, as the upstream agent does: Linux has
// no equivalent that every distribution keeps (wtmp is a per-architecture
// binary format that recent distributions no longer write).
func LastLogon() (Logon, error) {
	return lastLogon()
}
