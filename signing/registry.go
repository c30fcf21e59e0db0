package signing

import (
	"fmt"
	"strings"
)

// registryRoot names the hive a registry path starts with.
type registryRoot int

const (
	rootLocalMachine registryRoot = iota + 1
	rootCurrentUser
)

// splitRegistryPath splits `HKLM\SOFTWARE\x` into its root and subkey. The
// root is HKLM, HKEY_LOCAL_MACHINE, HKCU or HKEY_CURRENT_USER, in any case.
func splitRegistryPath(path string) (registryRoot, string, error) {
	head, sub, _ := strings.Cut(path, `\`)
	sub = strings.Trim(sub, `\`)
	var root registryRoot
	switch strings.ToUpper(head) {
	case "HKLM", "HKEY_LOCAL_MACHINE":
		root = rootLocalMachine
	case "HKCU", "HKEY_CURRENT_USER":
		root = rootCurrentUser
	default:
		return 0, "", fmt.Errorf("%w: %q: root must be HKLM or HKCU", ErrBadRegistryPath, path)
	}
	if sub == "" {
		return 0, "", fmt.Errorf("%w: %q: no subkey", ErrBadRegistryPath, path)
	}
	return root, sub, nil
}

// readRegistryString reads value name under the registry key at path (64-bit
// view) as a string: REG_SZ and REG_EXPAND_SZ as they are (not expanded),
// REG_MULTI_SZ joined by newlines, REG_DWORD and REG_QWORD in decimal. A
// missing key or value, or an empty string, gives ok false. Another value
// type is a *KeyringError wrapping ErrRegistryValueType; other failures
// wrap ErrUnreadable.
func readRegistryString(path, name string) (text string, ok bool, err error) {
	root, sub, err := splitRegistryPath(path)
	if err != nil {
		return "", false, err
	}
	return readRegistry(root, sub, path, name)
}
