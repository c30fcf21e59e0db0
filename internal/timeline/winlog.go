package timeline

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kinds of the ObsEvents this package produces (wire.ObsEvent.Kind).
const (
	KindLogon              = "logon"
	KindLogoff             = "logoff"
	KindLock               = "lock"
	KindUnlock             = "unlock"
	KindBoot               = "boot"
	KindShutdown           = "shutdown"
	KindUnexpectedShutdown = "unexpected_shutdown"
	KindSleep              = "sleep"
	KindResume             = "resume"
	KindWakeDetail         = "wake_detail"
	KindLogServiceStarted  = "log_service_started"
	KindLogServiceStopped  = "log_service_stopped"
)

// Providers of the mapped Windows events.
const (
	ProviderWinlogon          = "Microsoft-Windows-Winlogon"
	ProviderKernelGeneral     = "Microsoft-Windows-Kernel-General"
	ProviderKernelPower       = "Microsoft-Windows-Kernel-Power"
	ProviderKernelBoot        = "Microsoft-Windows-Kernel-Boot"
	ProviderPowerTroubleshoot = "Microsoft-Windows-Power-Troubleshooter"
)

const (
	winlogSourcePrefix         = "winlog:"
	winlogWatermarkFile        = "winlog-reader-watermark.json"
	maxEventXML                = 1 << 20 // a rendered event larger than this is refused
	maxQueryEvents             = 10000   // events read per query and poll at most
	defaultEvtNextTimeoutMilli = 5000
)

// Row is one entry of the event log matrix: events with EventID ID in
// Channel (from Provider, when set) become ObsEvents of Kind with source
// "winlog:<Channel>". It is upstream kanade's table, row for row.
type Row struct {
	// Channel is the event log channel read: System or Security.
	Channel string
	// Provider pins the provider for ids several providers reuse; empty
	// accepts any provider.
	Provider string
	// ID is the EventID.
	ID int
	// Kind is the ObsEvent kind produced.
	Kind string
}

// Rows is the Windows event log matrix, in upstream's order.
var Rows = []Row{
	{"System", ProviderWinlogon, 7001, KindLogon},
	{"System", ProviderWinlogon, 7002, KindLogoff},
	{"Security", "", 4800, KindLock},
	{"Security", "", 4801, KindUnlock},
	{"System", ProviderKernelGeneral, 12, KindBoot},
	{"System", ProviderKernelGeneral, 13, KindShutdown},
	{"System", ProviderKernelPower, 41, KindUnexpectedShutdown},
	{"System", ProviderKernelPower, 42, KindSleep},
	{"System", ProviderKernelPower, 107, KindResume},
	{"System", ProviderKernelPower, 506, KindSleep},
	{"System", ProviderKernelPower, 507, KindResume},
	{"System", ProviderKernelBoot, 27, KindResume},
	{"System", ProviderPowerTroubleshoot, 1, KindWakeDetail},
	{"System", "", 6005, KindLogServiceStarted},
	{"System", "", 6006, KindLogServiceStopped},
}

// Key is the row's watermark key, "<channel>:<provider>:<id>:<kind>" (the
// provider empty when not pinned), as upstream's watermark file.
func (r Row) Key() string {
	return fmt.Sprintf("%s:%s:%d:%s", r.Channel, r.Provider, r.ID, r.Kind)
}

// Query returns the XPath query for the row's events created at or after
// since, upstream's form:
//
//	*[System[Provider[@Name='P'] and (EventID=N) and TimeCreated[@SystemTime>='2006-01-02T15:04:05.000Z']]]
//
// (without the Provider clause when the row pins none). When after is
// non-zero it also selects only EventRecordID > after, which upstream
// checks after the query instead; the result is the same.
func (r Row) Query(since time.Time, after uint64) string {
	var b strings.Builder
	b.WriteString("*[System[")
	if r.Provider != "" {
		fmt.Fprintf(&b, "Provider[@Name='%s'] and ", r.Provider)
	}
	fmt.Fprintf(&b, "(EventID=%d) and TimeCreated[@SystemTime>='%s']", r.ID, since.UTC().Format("2006-01-02T15:04:05.000Z"))
	if after > 0 {
		fmt.Fprintf(&b, " and (EventRecordID>%d)", after)
	}
	b.WriteString("]]")
	return b.String()
}

// matches reports whether ev is one of the row's events.
func (r Row) matches(ev *Event) bool {
	return ev.EventID == r.ID && strings.EqualFold(ev.Channel, r.Channel) &&
		(r.Provider == "" || strings.EqualFold(ev.Provider, r.Provider))
}

// Event is a Windows event decoded from its XML rendering.
type Event struct {
	// Provider is System/Provider/@Name.
	Provider string
	// EventID is System/EventID.
	EventID int
	// Channel is System/Channel.
	Channel string
	// RecordID is System/EventRecordID.
	RecordID uint64
	// At is System/TimeCreated/@SystemTime, in UTC.
	At time.Time
	// Named holds the EventData <Data Name="X">v</Data> fields (the last
	// one wins when a name repeats).
	Named map[string]string
	// Positional holds the <Data>v</Data> fields without a name, in order.
	Positional []string
}

// xmlEvent is the EvtRenderEventXml shape. Element names match in any
// namespace (a rendered event carries
// xmlns="http://schemas.microsoft.com/win/2004/08/events/event").
type xmlEvent struct {
	XMLName xml.Name `xml:"Event"`
	System  *struct {
		Provider struct {
			Name string `xml:"Name,attr"`
		} `xml:"Provider"`
		EventID     *string `xml:"EventID"`
		TimeCreated *struct {
			SystemTime string `xml:"SystemTime,attr"`
		} `xml:"TimeCreated"`
		EventRecordID *string `xml:"EventRecordID"`
		Channel       string  `xml:"Channel"`
	} `xml:"System"`
	EventData *struct {
		Data []struct {
			Name  *string `xml:"Name,attr"`
			Value string  `xml:",chardata"`
		} `xml:"Data"`
	} `xml:"EventData"`
}

// DecodeEventXML decodes one event rendered as XML (EvtRender's
// EvtRenderEventXml). A document that is not XML, not an <Event>, or lacks
// EventID, EventRecordID or a valid TimeCreated/@SystemTime is an error
// wrapping ErrMalformed: such a record can be neither placed on the
// timeline nor deduplicated.
func DecodeEventXML(doc []byte) (*Event, error) {
	if len(doc) > maxEventXML {
		return nil, fmt.Errorf("%w: event XML of %d bytes (limit %d)", ErrMalformed, len(doc), maxEventXML)
	}
	var x xmlEvent
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	if err := d.Decode(&x); err != nil {
		return nil, fmt.Errorf("%w: event XML: %v", ErrMalformed, err)
	}
	if x.System == nil {
		return nil, fmt.Errorf("%w: event XML has no System element", ErrMalformed)
	}
	s := x.System
	if s.EventID == nil {
		return nil, fmt.Errorf("%w: event XML has no EventID", ErrMalformed)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(*s.EventID), 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%w: EventID %q: not a number from 0 to 65535", ErrMalformed, truncate(*s.EventID))
	}
	if s.EventRecordID == nil {
		return nil, fmt.Errorf("%w: event XML has no EventRecordID", ErrMalformed)
	}
	rec, err := strconv.ParseUint(strings.TrimSpace(*s.EventRecordID), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: EventRecordID %q: not a number", ErrMalformed, truncate(*s.EventRecordID))
	}
	if s.TimeCreated == nil {
		return nil, fmt.Errorf("%w: event XML has no TimeCreated", ErrMalformed)
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s.TimeCreated.SystemTime))
	if err != nil {
		return nil, fmt.Errorf("%w: TimeCreated SystemTime %q: not an RFC 3339 time", ErrMalformed, truncate(s.TimeCreated.SystemTime))
	}
	ev := &Event{
		Provider: strings.TrimSpace(s.Provider.Name),
		EventID:  int(id),
		Channel:  strings.TrimSpace(s.Channel),
		RecordID: rec,
		At:       at.UTC(),
		Named:    map[string]string{},
	}
	if x.EventData != nil {
		for _, f := range x.EventData.Data {
			if f.Name != nil {
				ev.Named[*f.Name] = f.Value
			} else {
				ev.Positional = append(ev.Positional, f.Value)
			}
		}
	}
	return ev, nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// MapEvent finds the row of ev and returns the ObsEvent fields for it:
// kind, source ("winlog:<row channel>") and payload. ok is false for an
// event no row maps, and for a row's event that is deliberately not
// surfaced (Kernel-Boot 27 with a BootType other than 2). resolveSID turns
// a Winlogon user SID into an account name (nil keeps the SID).
func MapEvent(ev *Event, resolveSID func(string) string) (row Row, payload json.RawMessage, ok bool) {
	for _, r := range Rows {
		if r.matches(ev) {
			p, emit := shape(r, ev, resolveSID)
			return r, p, emit
		}
	}
	return Row{}, nil, false
}

// field is an EventData field by name, else the positional one at idx.
func (ev *Event) field(name string, idx int) (string, bool) {
	if v, ok := ev.Named[name]; ok {
		return v, true
	}
	if idx < len(ev.Positional) {
		return ev.Positional[idx], true
	}
	return "", false
}

// intOrNil parses v (trimmed) as an integer, nil when it is not one.
func intOrNil(v string, ok bool) any {
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return nil
	}
	return n
}

// strOrNil is v, or nil when absent.
func strOrNil(v string, ok bool) any {
	if !ok {
		return nil
	}
	return v
}

// marshalPayload encodes p as upstream's serde_json does: map keys
// sorted, no HTML escaping, no trailing newline.
func marshalPayload(p any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return json.RawMessage("null") // cannot happen: strings, integers and maps only
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// shape builds the row's payload as upstream does; emit is false for a
// record to skip.
func shape(r Row, ev *Event, resolveSID func(string) string) (json.RawMessage, bool) {
	var p any
	switch r.ID {
	case 7001, 7002:
		sid, ok := ev.field("UserSid", 1)
		var user any
		if ok {
			user = sid
			if resolveSID != nil {
				user = resolveSID(sid)
			}
		}
		p = map[string]any{"user": user, "sid": strOrNil(sid, ok), "session_id": intOrNil(ev.field("TSId", 0))}
	case 4800, 4801:
		u, uok := ev.Named["TargetUserName"]
		s, sok := ev.Named["SessionId"]
		p = map[string]any{"user": strOrNil(u, uok), "session_id": intOrNil(s, sok)}
	case 506, 507:
		p = map[string]any{"standby": "modern"}
	case 27:
		if n := intOrNil(ev.field("BootType", 0)); n != int64(2) {
			return nil, false
		}
		p = map[string]any{"from": "hibernate"}
	case 1:
		var src any
		if v, ok := ev.Named["WakeSourceText"]; ok && strings.TrimSpace(v) != "" {
			src = v
		} else if v, ok := ev.Named["WakeSourceType"]; ok {
			src = v
		}
		st, sok := ev.Named["SleepTime"]
		wt, wok := ev.Named["WakeTime"]
		p = map[string]any{"sleep_start": strOrNil(st, sok), "wake_time": strOrNil(wt, wok), "wake_source": src}
	default:
		return json.RawMessage("null"), true
	}
	return marshalPayload(p), true
}
