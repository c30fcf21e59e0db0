package timeline

import "errors"

// ErrMalformed is returned (wrapped) by DecodeEventXML for a document that
// is not a rendered Windows event or lacks a field every event needs
// (EventRecordID, TimeCreated, EventID), and by the wtmp reader for a
// record it cannot read.
var ErrMalformed = errors.New("timeline: malformed record")

// ErrNoDir is returned by New when Options.Dir is empty.
var ErrNoDir = errors.New("timeline: Options.Dir is required")

// ErrUnsupported is returned (wrapped) by an EventLog that cannot read the
// Windows event log on this system: not Windows, or a Windows (such as
// Wine) whose wevtapi.dll does not implement the call.
var ErrUnsupported = errors.New("timeline: event log not supported here")
