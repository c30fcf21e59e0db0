package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/kanade/kanade-agent/internal/fsutil"
)

// On-disk format; see doc.go.
const (
	segMagic      = "KOBXSEG1"
	segHeaderLen  = len(segMagic)
	recHeaderLen  = 8  // u32 body length, u32 crc32c(body)
	bodyFixedLen  = 12 // u8 version, u8 id length, u16 subject length, i64 enqueue time
	recVersion    = 1
	ackEntryLen   = 8 // u32 ordinal, u32 crc32c(seq, ordinal)
	segPrefix     = "seg-"
	segSuffix     = ".log"
	ackSuffix     = ".ack"
	tmpSuffix     = fsutil.TempSuffix
	legacySuffix  = ".json"
	lockName      = "outbox.lock"
	stuckDirName  = "stuck"
	corruptDirNam = "corrupt"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record states.
const (
	stPending  uint8 = iota // not published, not in the retry heap
	stInflight              // published, waiting for the ack
	stWaiting               // in the retry heap
	stDone                  // acked, or moved to stuck/ or corrupt/
)

// fail is what an item that failed (or was put back) carries until it is
// finished: kept in a map per segment, only for such items.
type fail struct {
	attempts uint8
	// noStream: the last publish found no stream answering for the
	// subject; the item waits for the drain's probe (drain.go, noStream).
	noStream bool
	next     int64 // earliest next attempt, unix ns
}

// segment is one segment file, or (legacy) the set of legacy item files.
//
// Its index of records is packed, about 3 bytes per record and no
// allocation per record: the length (u16; the rare longer ones in bigs)
// and the state (u8). A block of 64 records also keeps the offset of its
// first one; the offset of a record is its block's plus the lengths before
// it (plus the bytes skipped as corrupt after a record, in gaps). Ids,
// subjects, enqueue times and items stay on disk: only the enqueue time of
// the oldest unfinished record is kept (lowAt, for Stats.OldestAge), set
// at load and commit and refreshed from the file by the drainer as records
// finish. Attempts and retry times exist only for the items that failed or
// were put back (fails).
type segment struct {
	seq     uint64
	path    string
	lens    []uint16
	bigs    map[int32]uint32
	gaps    map[int32]int64
	offBase []int64 // offset of record k*blockLen
	st      []uint8
	end     int64 // end of the last record
	fails   map[int32]fail

	lowAt    int64   // enqueue time of record lowAtIdx (unix ns)
	lowAtIdx int     // -1: not known
	lats     []int64 // legacy: enqueue time (file mtime) per record

	done   int
	low    int   // records [:low] are all done
	size   int64 // committed bytes
	active bool

	rf   *os.File // read handle (drainer)
	ackf *os.File // ack file (drainer)
	acks []byte   // pending ack entries (drainer)

	legacy  bool
	lpaths  []string // legacy: file per rec
	lsubj   []string // legacy: subject per rec
	removed bool
}

const (
	blockShift = 6
	blockLen   = 1 << blockShift
	lenBig     = math.MaxUint16
)

func newSegment(seq uint64, path string) *segment {
	return &segment{seq: seq, path: path, lowAtIdx: -1}
}

// count returns the number of records.
func (s *segment) count() int { return len(s.st) }

// n returns the length of record i.
func (s *segment) n(i int) uint32 {
	if l := s.lens[i]; l != lenBig {
		return uint32(l)
	}
	return s.bigs[int32(i)]
}

// off returns the offset of record i (legacy: the sum of the sizes before it).
func (s *segment) off(i int) int64 {
	o := s.offBase[i>>blockShift]
	for k := i &^ (blockLen - 1); k < i; k++ {
		o += int64(s.n(k))
		if s.gaps != nil {
			o += s.gaps[int32(k)]
		}
	}
	return o
}

// oldestAt returns the enqueue time of the oldest unfinished record, if
// any. It may lag behind by one drain step (the drainer refreshes lowAt
// right after finishing records): it then returns the time of a record
// finished just now, slightly older. s.mu must be held.
func (s *segment) oldestAt() (int64, bool) {
	if !s.advanceLow() {
		return 0, false
	}
	if s.legacy {
		return s.lats[s.low], true
	}
	if s.lowAtIdx < 0 {
		return 0, false
	}
	return s.lowAt, true
}

// setLowAt records the enqueue time of record i if it is the oldest
// unfinished one. s.mu must be held.
func (s *segment) setLowAt(i int, at int64) {
	if s.advanceLow() && s.low == i {
		s.lowAt, s.lowAtIdx = at, i
	}
}

// add appends a record to the index. Records are added in file order;
// off may be past the end of the previous one (corrupt bytes skipped).
func (s *segment) add(off int64, n uint32, at int64) {
	i := len(s.st)
	if i > 0 && off != s.end {
		if s.gaps == nil {
			s.gaps = map[int32]int64{}
		}
		s.gaps[int32(i-1)] = off - s.end
	}
	if i%blockLen == 0 {
		s.offBase = append(s.offBase, off)
	}
	if n >= lenBig {
		if s.bigs == nil {
			s.bigs = map[int32]uint32{}
		}
		s.bigs[int32(i)] = n
		s.lens = append(s.lens, lenBig)
	} else {
		s.lens = append(s.lens, uint16(n))
	}
	if s.legacy {
		s.lats = append(s.lats, at)
	}
	s.st = append(s.st, stPending)
	s.end = off + int64(n)
	s.setLowAt(i, at)
}

// compact drops the spare capacity of the index (after a load).
func (s *segment) compact() {
	s.lens = shrink(s.lens)
	s.offBase = shrink(s.offBase)
	s.st = shrink(s.st)
}

func shrink[E any](x []E) []E {
	if cap(x)-len(x) <= len(x)/16 {
		return x
	}
	return append(make([]E, 0, len(x)), x...)
}

// advanceLow moves low past the finished records and reports whether a
// record is left (s.low then indexes the oldest unfinished one).
func (s *segment) advanceLow() bool {
	for s.low < len(s.st) && s.st[s.low] == stDone {
		s.low++
	}
	return s.low < len(s.st)
}

func segName(seq uint64) string { return fmt.Sprintf("%s%016x%s", segPrefix, seq, segSuffix) }

func parseSegName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	s := strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix)
	if len(s) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 16, 64)
	return seq, err == nil
}

func ackPath(segPath string) string { return strings.TrimSuffix(segPath, segSuffix) + ackSuffix }

// encodeRecord appends the record of one item to dst.
func encodeRecord(dst []byte, id, subj string, at int64, data []byte) []byte {
	bodyLen := bodyFixedLen + len(id) + len(subj) + len(data)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(bodyLen))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, below
	dst = append(dst, recVersion, byte(len(id)))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(subj)))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(at))
	dst = append(dst, id...)
	dst = append(dst, subj...)
	dst = append(dst, data...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+recHeaderLen:], castagnoli))
	return dst
}

// decoded is one parsed record.
type decoded struct {
	id   string
	subj []byte
	at   int64
	data []byte
	n    int // total record length
}

var (
	errShort    = errors.New("truncated record")
	errBadLen   = errors.New("implausible record length")
	errChecksum = errors.New("checksum mismatch")
	errBadBody  = errors.New("malformed record body")
)

// decodeRecord parses the record at the start of b. maxBody bounds the body
// length.
func decodeRecord(b []byte, maxBody int) (decoded, error) {
	n, at, err := checkRecord(b, maxBody)
	if err != nil {
		return decoded{}, err
	}
	body := b[recHeaderLen:n]
	idLen, subjLen := int(body[1]), int(binary.LittleEndian.Uint16(body[2:]))
	d := decoded{
		at:   at,
		id:   string(body[bodyFixedLen : bodyFixedLen+idLen]),
		subj: body[bodyFixedLen+idLen : bodyFixedLen+idLen+subjLen],
		data: body[bodyFixedLen+idLen+subjLen:],
		n:    n,
	}
	return d, nil
}

// checkRecord checks the record at the start of b as decodeRecord does and
// returns its total length and enqueue time, allocating nothing.
func checkRecord(b []byte, maxBody int) (n int, at int64, err error) {
	if len(b) < recHeaderLen {
		return 0, 0, errShort
	}
	bn := int(binary.LittleEndian.Uint32(b))
	if bn < bodyFixedLen || bn > maxBody {
		return 0, 0, errBadLen
	}
	if len(b) < recHeaderLen+bn {
		return 0, 0, errShort
	}
	body := b[recHeaderLen : recHeaderLen+bn]
	if body[0] != recVersion {
		return 0, 0, errBadBody
	}
	idLen, subjLen := int(body[1]), int(binary.LittleEndian.Uint16(body[2:]))
	if idLen == 0 || subjLen == 0 || bodyFixedLen+idLen+subjLen > bn {
		return 0, 0, errBadBody
	}
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, 0, errChecksum
	}
	return recHeaderLen + bn, int64(binary.LittleEndian.Uint64(body[4:])), nil
}

// resync returns the offset of the next valid record in b at or after
// from, or len(b) if there is none.
func resync(b []byte, from, maxBody int) int {
	for off := from; off+recHeaderLen+bodyFixedLen <= len(b); off++ {
		// Cheap checks first: version byte, then a full decode.
		if b[off+recHeaderLen] != recVersion {
			continue
		}
		if _, _, err := checkRecord(b[off:], maxBody); err == nil {
			return off
		}
	}
	return len(b)
}

func ackEntry(seq uint64, ord uint32) [ackEntryLen]byte {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], seq)
	binary.LittleEndian.PutUint32(b[8:], ord)
	var e [ackEntryLen]byte
	binary.LittleEndian.PutUint32(e[:4], ord)
	binary.LittleEndian.PutUint32(e[4:], crc32.Checksum(b[:], castagnoli))
	return e
}

// forAcks calls fn with each valid ordinal in an ack file's content.
func forAcks(seq uint64, b []byte, fn func(ord uint32)) {
	for len(b) >= ackEntryLen {
		ord := binary.LittleEndian.Uint32(b)
		if e := ackEntry(seq, ord); string(e[:]) == string(b[:ackEntryLen]) {
			fn(ord)
		}
		b = b[ackEntryLen:]
	}
}
