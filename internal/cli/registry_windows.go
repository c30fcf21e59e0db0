//go:build windows

package cli

import (
	"errors"

	"golang.org/x/sys/windows/registry"
)

func init() {
	readRegistryToken = func() (string, error) {
		k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\kanade\agent`, registry.QUERY_VALUE)
		if err != nil {
			return "", err
		}
		defer k.Close()
		v, _, err := k.GetStringValue("NatsToken")
		if errors.Is(err, registry.ErrNotExist) {
			return "", nil
		}
		return v, err
	}
}
