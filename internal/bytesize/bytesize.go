// Package bytesize parses byte counts given by operators: a bare number of
// bytes or a number with a binary unit (KiB, MiB, GiB, TiB).
package bytesize

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// ErrSyntax is returned for anything Parse does not accept.
var ErrSyntax = errors.New("want a byte count such as 1073741824, 512MiB or 2GiB")

// Parse parses v: digits, optionally followed (spaces allowed) by KiB, MiB,
// GiB or TiB in any case. Negative numbers, decimal units (KB, GB) and
// counts beyond int64 are refused with ErrSyntax.
func Parse(v string) (int64, error) {
	num, mult := strings.TrimSpace(v), int64(1)
	for i, unit := range []string{"kib", "mib", "gib", "tib"} {
		if strings.HasSuffix(strings.ToLower(num), unit) {
			num, mult = strings.TrimSpace(num[:len(num)-3]), int64(1)<<(10*(i+1))
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, ErrSyntax
	}
	return n * mult, nil
}
