package update

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// semver is a parsed semantic version; build metadata is dropped.
type semver struct {
	core [3]uint64
	pre  []string // dot-separated pre-release identifiers; nil for a release
}

var errNotSemver = errors.New("not a semantic version")

// parseSemver parses MAJOR[.MINOR[.PATCH]][-PRE][+BUILD], with an optional
// leading v or V; missing MINOR and PATCH are 0.
func parseSemver(s string) (semver, error) {
	var v semver
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	core, pre, hasPre := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) > 3 {
		return v, errNotSemver
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || p == "" || p[0] == '+' {
			return v, errNotSemver
		}
		v.core[i] = n
	}
	if hasPre {
		v.pre = strings.Split(pre, ".")
		for _, id := range v.pre {
			if id == "" {
				return v, errNotSemver
			}
		}
	}
	return v, nil
}

// CompareVersions orders two release versions by semantic-version
// precedence: MAJOR[.MINOR[.PATCH]][-PRE][+BUILD], an optional leading v,
// missing MINOR and PATCH counting as 0, build metadata ignored, a
// pre-release lower than its release, pre-release identifiers compared
// numerically when both are numbers and as ASCII otherwise (numbers lower).
// It returns -1 when a < b, 0 when equal in precedence, +1 when a > b, and
// an error when either is not such a version.
func CompareVersions(a, b string) (int, error) {
	va, err := parseSemver(a)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", shorten(a), err)
	}
	vb, err := parseSemver(b)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", shorten(b), err)
	}
	for i := range va.core {
		if c := cmpUint(va.core[i], vb.core[i]); c != 0 {
			return c, nil
		}
	}
	switch {
	case va.pre == nil && vb.pre == nil:
		return 0, nil
	case va.pre == nil:
		return 1, nil
	case vb.pre == nil:
		return -1, nil
	}
	for i := 0; i < len(va.pre) && i < len(vb.pre); i++ {
		if c := cmpIdent(va.pre[i], vb.pre[i]); c != 0 {
			return c, nil
		}
	}
	return cmpUint(uint64(len(va.pre)), uint64(len(vb.pre))), nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpIdent compares two pre-release identifiers.
func cmpIdent(a, b string) int {
	na, ea := strconv.ParseUint(a, 10, 64)
	nb, eb := strconv.ParseUint(b, 10, 64)
	switch {
	case ea == nil && eb == nil:
		return cmpUint(na, nb)
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}
