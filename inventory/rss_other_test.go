//go:build !windows

package inventory

import "testing"

func rssWindows(t *testing.T) uint64 { t.Fatal("not windows"); return 0 }
