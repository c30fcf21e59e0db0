package outbox

import (
	"encoding/json"
	"os"
)

// Pending calls fn with the id and value of every item not yet
// acknowledged (neither stuck nor corrupt), oldest first, until fn returns
// false. It reads the items from disk and is meant for rare inspection,
// such as a crash recovery asking whether a result is already stored, not
// for a hot path. It sees the items committed when it is called; an item
// acknowledged meanwhile may or may not be visited. Items that can no
// longer be read (acknowledged and removed) or decoded are skipped; the
// drain deals with the latter.
func (o *Outbox[T]) Pending(fn func(id string, v T) bool) error {
	o.encMu.RLock()
	closed := o.closed
	o.encMu.RUnlock()
	if closed {
		return ErrClosed
	}
	o.mu.Lock()
	segs := append([]*segment(nil), o.segs...)
	o.mu.Unlock()

	// One segment at a time: the positions of its unfinished items, then
	// the reads (no lock held, no per-item index of the whole outbox).
	type ref struct {
		idx int
		off int64
		n   uint32
	}
	var refs []ref
	for _, seg := range segs {
		refs = refs[:0]
		o.mu.Lock()
		if !seg.removed {
			for i, st := range seg.st {
				if st != stDone {
					refs = append(refs, ref{i, seg.off(i), seg.n(i)})
				}
			}
		}
		o.mu.Unlock()
		if len(refs) == 0 {
			continue
		}
		var f *os.File
		if !seg.legacy {
			var err error
			if f, err = os.Open(seg.path); err != nil {
				continue // finished and removed meanwhile
			}
		}
		stop := false
		for _, r := range refs {
			var id string
			var data []byte
			if seg.legacy {
				b, err := os.ReadFile(seg.lpaths[r.idx])
				if err != nil {
					continue
				}
				id, data = legacyID(seg.lpaths[r.idx]), b
			} else {
				buf := make([]byte, r.n)
				if _, err := f.ReadAt(buf, r.off); err != nil {
					continue
				}
				rec, err := decodeRecord(buf, o.maxBody())
				if err != nil {
					continue
				}
				id, data = rec.id, rec.data
			}
			var v T
			if json.Unmarshal(data, &v) != nil {
				continue
			}
			if !fn(id, v) {
				stop = true
				break
			}
		}
		if f != nil {
			f.Close()
		}
		if stop {
			return nil
		}
	}
	return nil
}
