package ledger

import (
	"encoding/binary"
	"hash/crc32"
)

// File format; doc.go describes it in prose.
const (
	fileMagic  = "KNDLEDGR"
	fileVer    = 1
	headerSize = 16 // magic[8] | version u32 LE | reserved u32 (0)

	frameSize   = 8  // payload length u32 LE | CRC-32C u32 LE
	payloadHead = 11 // kind u8 | at i64 LE | id length u16 LE

	minPayload = payloadHead + 1
	maxPayload = payloadHead + MaxRequestIDLen + MaxMetaLen

	kindLaunching byte = 1
	kindFinished  byte = 2
)

// MaxRequestIDLen is the longest request id, in bytes, the ledger accepts.
// The protocol limits ids to 128 bytes; the margin is deliberate.
const MaxRequestIDLen = 1024

// MaxMetaLen is the largest metadata, in bytes, Launching accepts.
const MaxMetaLen = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is one decoded log record.
type record struct {
	kind byte
	at   int64 // Unix nanoseconds
	id   string
	meta []byte // aliases the input buffer; copy before keeping
}

// fileHeader returns the 16-byte header every ledger file starts with.
func fileHeader() []byte {
	h := make([]byte, headerSize)
	copy(h, fileMagic)
	binary.LittleEndian.PutUint32(h[8:], fileVer)
	return h
}

// validHeader reports whether b starts with a header this version reads.
func validHeader(b []byte) bool {
	return len(b) >= headerSize && string(b[:8]) == fileMagic &&
		binary.LittleEndian.Uint32(b[8:]) == fileVer &&
		binary.LittleEndian.Uint32(b[12:]) == 0
}

// appendRecord appends the framed record to dst.
func appendRecord(dst []byte, kind byte, at int64, id string, meta []byte) []byte {
	n := payloadHead + len(id) + len(meta)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, 0, 0, 0, 0) // CRC, filled below
	dst = append(dst, kind)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(at))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(id)))
	dst = append(dst, id...)
	dst = append(dst, meta...)
	binary.LittleEndian.PutUint32(dst[start+4:], recordCRC(dst[start:start+4], dst[start+frameSize:]))
	return dst
}

// recordCRC is the CRC-32C of the length field followed by the payload.
func recordCRC(length, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, length), castagnoli, payload)
}

// frameStatus classifies the bytes at the start of b.
type frameStatus int

const (
	frameOK      frameStatus = iota
	frameTorn                // b ends inside a frame whose length is plausible
	frameCorrupt             // bad length, CRC or payload
)

// decodeFrame decodes the record at the start of b and returns its total size.
func decodeFrame(b []byte) (record, int, frameStatus) {
	if len(b) < frameSize {
		return record{}, 0, frameTorn
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < minPayload || n > maxPayload {
		return record{}, 0, frameCorrupt
	}
	if len(b) < frameSize+n {
		return record{}, 0, frameTorn
	}
	p := b[frameSize : frameSize+n]
	if p[0] != kindLaunching && p[0] != kindFinished {
		return record{}, 0, frameCorrupt
	}
	if recordCRC(b[:4], p) != binary.LittleEndian.Uint32(b[4:]) {
		return record{}, 0, frameCorrupt
	}
	idLen := int(binary.LittleEndian.Uint16(p[9:]))
	if idLen == 0 || idLen > MaxRequestIDLen || payloadHead+idLen > n {
		return record{}, 0, frameCorrupt
	}
	meta := p[payloadHead+idLen:]
	if len(meta) > MaxMetaLen || (p[0] == kindFinished && len(meta) != 0) {
		return record{}, 0, frameCorrupt
	}
	return record{
		kind: p[0],
		at:   int64(binary.LittleEndian.Uint64(p[1:])),
		id:   string(p[payloadHead : payloadHead+idLen]),
		meta: meta,
	}, frameSize + n, frameOK
}

// parseResult is what parseLog found in a log file.
type parseResult struct {
	records  []record
	validEnd int  // offset just past the last record of the valid prefix
	torn     bool // the suffix after validEnd is one incomplete frame
	salvaged int  // CRC-valid records found after the first bad frame
}

// maxSalvageScan bounds the bytes after a corrupt frame that are searched
// for intact records.
const maxSalvageScan = 64 << 20

// parseLog decodes the records of a log file whose header is valid. On a bad
// frame it stops the valid prefix there; if the rest is not merely a torn
// final frame, it scans the rest byte by byte for CRC-valid records
// (salvage), which are returned too: records are monotone and idempotent, so
// applying a salvaged one is safe, and it keeps a valid launching entry that
// follows a damaged region.
func parseLog(b []byte) parseResult {
	var res parseResult
	off := headerSize
	for off < len(b) {
		rec, n, st := decodeFrame(b[off:])
		if st != frameOK {
			res.torn = st == frameTorn
			break
		}
		res.records = append(res.records, rec)
		off += n
	}
	res.validEnd = off
	if off < len(b) && !res.torn {
		res.salvaged = salvage(b[off+1:], &res.records)
	}
	return res
}

// salvage scans b for CRC-valid records and appends them to recs; it returns
// how many it found.
func salvage(b []byte, recs *[]record) int {
	if len(b) > maxSalvageScan {
		b = b[:maxSalvageScan]
	}
	found := 0
	for p := 0; p+frameSize+minPayload <= len(b); {
		rec, n, st := decodeFrame(b[p:])
		if st != frameOK {
			p++
			continue
		}
		*recs = append(*recs, rec)
		found++
		p += n
	}
	return found
}
