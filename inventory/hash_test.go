package inventory

import (
	"testing"

	"github.com/kanade/kanade-agent/wire"
)

// TestHashChangesWithOneField collects a category twice from the same input
// (same hash), then changes one field (new hash).
func TestHashChangesWithOneField(t *testing.T) {
	fsys := fixtureFS()
	c := fixtureLinux(fsys)
	a, err := CollectCategory(bg, c, "pc", wire.CategoryOS)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := CollectCategory(bg, fixtureLinux(fsys), "pc", wire.CategoryOS)
	if a.Hash != b.Hash {
		t.Fatalf("same input, different hashes")
	}
	fsys["proc/sys/kernel/osrelease"].Data = []byte("6.1.0-19-amd64\n")
	d, _ := CollectCategory(bg, c, "pc", wire.CategoryOS)
	if d.Hash == a.Hash {
		t.Fatal("kernel release changed, hash did not")
	}
	// Directly on data: one changed value, one reordered map.
	rows := rowsOf(t, a.Data, ClassKernel)
	rows[0]["release"] = "other"
	if h, _ := wire.HashData(a.Data); h == a.Hash {
		t.Fatal("changed field, same hash")
	}
	// The volatile free memory does not count.
	fsys["proc/meminfo"].Data = []byte("MemTotal:       16318480 kB\nMemFree:         1 kB\n")
	h1, _ := CollectCategory(bg, c, "pc", wire.CategoryHW)
	fsys["proc/meminfo"].Data = []byte("MemTotal:       16318480 kB\nMemFree:         999 kB\n")
	h2, _ := CollectCategory(bg, c, "pc", wire.CategoryHW)
	if h1.Hash != h2.Hash {
		t.Fatal("free memory changed the hash")
	}
}
