package outbox

import (
	"encoding/json"
	"os"
)

// pendingRef locates one unacknowledged item on disk.
type pendingRef struct {
	path string // segment file, or the legacy item's file
	off  int64  // record offset (segments)
	n    uint32 // record length (segments)
	leg  bool
}

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
	var refs []pendingRef
	for _, seg := range o.segs {
		for i, r := range seg.recs {
			if r.state == stDone {
				continue
			}
			if seg.legacy {
				refs = append(refs, pendingRef{path: seg.lpaths[i], leg: true})
			} else {
				refs = append(refs, pendingRef{path: seg.path, off: r.off, n: r.n})
			}
		}
	}
	o.mu.Unlock()

	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, ref := range refs {
		var id string
		var data []byte
		if ref.leg {
			b, err := os.ReadFile(ref.path)
			if err != nil {
				continue
			}
			id, data = legacyID(ref.path), b
		} else {
			f, ok := files[ref.path]
			if !ok {
				var err error
				if f, err = os.Open(ref.path); err != nil {
					files[ref.path] = nil
					continue
				}
				files[ref.path] = f
			}
			if f == nil {
				continue
			}
			buf := make([]byte, ref.n)
			if _, err := f.ReadAt(buf, ref.off); err != nil {
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
			return nil
		}
	}
	return nil
}
