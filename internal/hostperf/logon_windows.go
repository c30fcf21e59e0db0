package hostperf

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

func lastLogon() (Logon, error) {
	return readLogon(registry.LOCAL_MACHINE, logonUIKey)
}

// maxLogonValue bounds a value read from the LogonUI key, in UTF-16 units.
const maxLogonValue = 1024

// readLogon reads the LastLoggedOnUser and LastLoggedOnDisplayName values of
// root\path. A missing key or value leaves its field empty.
func readLogon(root registry.Key, path string) (Logon, error) {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
		return Logon{}, nil
	}
	if err != nil {
		return Logon{}, fmt.Errorf("hostperf: open LogonUI key: %w", err)
	}
	defer k.Close()
	var l Logon
	for _, v := range []struct {
		name string
		dst  *string
	}{{"LastLoggedOnUser", &l.User}, {"LastLoggedOnDisplayName", &l.DisplayName}} {
		s, _, err := k.GetStringValue(v.name)
		if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
			continue
		}
		if err != nil {
			return Logon{}, fmt.Errorf("hostperf: read LogonUI %s: %w", v.name, err)
		}
		if len(s) > maxLogonValue {
			return Logon{}, fmt.Errorf("%w: LogonUI %s is %d characters long", ErrMalformed, v.name, len(s))
		}
		*v.dst = strings.TrimSpace(s)
	}
	return l, nil
}
