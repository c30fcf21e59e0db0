//go:build windows

package signing

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/windows/registry"
)

// registrySupported says whether Sources reads the registry on this system.
const registrySupported = true

func readRegistry(root registryRoot, sub, path, name string) (string, bool, error) {
	hive := registry.LOCAL_MACHINE
	if root == rootCurrentUser {
		hive = registry.CURRENT_USER
	}
	source := "registry " + path + " value " + name
	k, err := registry.OpenKey(hive, sub, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: %s: %w", ErrUnreadable, source, err)
	}
	defer k.Close()
	size, typ, err := k.GetValue(name, nil)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: %s: %w", ErrUnreadable, source, err)
	}
	if size > 2*MaxKeyringSize+2 {
		return "", false, &KeyringError{Source: source, Entry: -1, Err: fmt.Errorf("%w: over %d bytes", ErrTooLarge, MaxKeyringSize)}
	}
	var text string
	switch typ {
	case registry.SZ, registry.EXPAND_SZ:
		text, _, err = k.GetStringValue(name)
	case registry.MULTI_SZ:
		var ss []string
		ss, _, err = k.GetStringsValue(name)
		text = strings.Join(ss, "\n")
	case registry.DWORD, registry.QWORD:
		var n uint64
		n, _, err = k.GetIntegerValue(name)
		text = strconv.FormatUint(n, 10)
	default:
		return "", false, &KeyringError{Source: source, Entry: -1,
			Err: fmt.Errorf("%w: type %d, want REG_SZ", ErrRegistryValueType, typ)}
	}
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil // deleted since read
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: %s: %w", ErrUnreadable, source, err)
	}
	if text == "" {
		return "", false, nil
	}
	return text, true, nil
}
