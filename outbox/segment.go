package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
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

// rec is the in-memory index entry of one item.
type rec struct {
	off      int64 // record offset in the segment (legacy: unused)
	n        uint32
	state    uint8
	attempts uint8
	at       int64 // enqueue time, unix ns
	next     int64 // earliest next attempt, unix ns
}

// segment is one segment file, or (legacy) the set of legacy item files.
type segment struct {
	seq    uint64
	path   string
	recs   []rec
	done   int
	low    int   // recs[:low] are all done
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
	id, subj string
	at       int64
	data     []byte
	n        int // total record length
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
	if len(b) < recHeaderLen {
		return decoded{}, errShort
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < bodyFixedLen || n > maxBody {
		return decoded{}, errBadLen
	}
	if len(b) < recHeaderLen+n {
		return decoded{}, errShort
	}
	body := b[recHeaderLen : recHeaderLen+n]
	if body[0] != recVersion {
		return decoded{}, errBadBody
	}
	idLen, subjLen := int(body[1]), int(binary.LittleEndian.Uint16(body[2:]))
	if idLen == 0 || subjLen == 0 || bodyFixedLen+idLen+subjLen > n {
		return decoded{}, errBadBody
	}
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return decoded{}, errChecksum
	}
	d := decoded{
		at:   int64(binary.LittleEndian.Uint64(body[4:])),
		id:   string(body[bodyFixedLen : bodyFixedLen+idLen]),
		subj: string(body[bodyFixedLen+idLen : bodyFixedLen+idLen+subjLen]),
		data: body[bodyFixedLen+idLen+subjLen:],
		n:    recHeaderLen + n,
	}
	return d, nil
}

// resync returns the offset of the next valid record in b at or after
// from, or len(b) if there is none.
func resync(b []byte, from, maxBody int) int {
	for off := from; off+recHeaderLen+bodyFixedLen <= len(b); off++ {
		// Cheap checks first: version byte, then a full decode.
		if b[off+recHeaderLen] != recVersion {
			continue
		}
		if _, err := decodeRecord(b[off:], maxBody); err == nil {
			return off
		}
	}
	return len(b)
}

func ackEntry(seq uint64, ord uint32) []byte {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], seq)
	binary.LittleEndian.PutUint32(b[8:], ord)
	var e [ackEntryLen]byte
	binary.LittleEndian.PutUint32(e[:4], ord)
	binary.LittleEndian.PutUint32(e[4:], crc32.Checksum(b[:], castagnoli))
	return e[:]
}

// readAcks returns the valid ordinals in an ack file's content.
func readAcks(seq uint64, b []byte) []uint32 {
	var out []uint32
	for len(b) >= ackEntryLen {
		ord := binary.LittleEndian.Uint32(b)
		if string(ackEntry(seq, ord)) == string(b[:ackEntryLen]) {
			out = append(out, ord)
		}
		b = b[ackEntryLen:]
	}
	return out
}
