//go:build windows

package signing

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/windows/registry"
)

// registrySupported says whether Load reads the registry on this system.
const registrySupported = true

// readRegistry reads the string values of the key, sorted by name. A missing
// key gives no values.
func readRegistry(root registryRoot, sub string) ([]registryValue, error) {
	hive := registry.LOCAL_MACHINE
	if root == rootCurrentUser {
		hive = registry.CURRENT_USER
	}
	k, err := registry.OpenKey(hive, sub, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if errors.Is(err, registry.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer k.Close()
	names, err := k.ReadValueNames(0)
	if err != nil {
		return nil, fmt.Errorf("listing values: %w", err)
	}
	slices.Sort(names)
	values := make([]registryValue, 0, len(names))
	for _, name := range names {
		_, typ, err := k.GetValue(name, nil)
		if errors.Is(err, registry.ErrNotExist) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, fmt.Errorf("value %q: %w", name, err)
		}
		switch typ {
		case registry.SZ, registry.EXPAND_SZ:
			s, _, err := k.GetStringValue(name)
			if err != nil {
				return nil, fmt.Errorf("value %q: %w", name, err)
			}
			values = append(values, registryValue{name: name, texts: []string{s}})
		case registry.MULTI_SZ:
			ss, _, err := k.GetStringsValue(name)
			if err != nil {
				return nil, fmt.Errorf("value %q: %w", name, err)
			}
			values = append(values, registryValue{name: name, multi: true, texts: ss})
		default:
			values = append(values, registryValue{name: name, badType: true, typ: typ})
		}
	}
	return values, nil
}
