//go:build windows

package daemon

import (
	"errors"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

func init() { readRegistryToken = registryToken }

// registryToken reads RegistryTokenPath; a missing key or value is "".
func registryToken() (string, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, registryAgentKey, registry.QUERY_VALUE)
	if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) || errors.Is(err, windows.ERROR_PATH_NOT_FOUND) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer k.Close()
	v, _, err := k.GetStringValue(registryTokenValue)
	if errors.Is(err, registry.ErrNotExist) || errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
		return "", nil
	}
	return v, err
}
