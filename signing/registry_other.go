//go:build !windows

package signing

import (
	"errors"
	"fmt"
	"runtime"
)

// registrySupported says whether Load reads the registry on this system.
const registrySupported = false

func readRegistry(registryRoot, string) ([]registryValue, error) {
	return nil, fmt.Errorf("%w: no registry on %s", errors.ErrUnsupported, runtime.GOOS)
}
