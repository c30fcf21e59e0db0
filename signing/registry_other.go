//go:build !windows

package signing

import (
	"errors"
	"fmt"
	"runtime"
)

// registrySupported says whether Sources reads the registry on this system.
const registrySupported = false

func readRegistry(_ registryRoot, _, path, name string) (string, bool, error) {
	return "", false, fmt.Errorf("%w: %s value %s: %w: no registry on %s", ErrUnreadable, path, name, errors.ErrUnsupported, runtime.GOOS)
}
