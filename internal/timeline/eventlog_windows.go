//go:build windows

package timeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The Windows Event Log API (wevtapi.dll); golang.org/x/sys/windows has no
// wrappers for it.
var (
	wevtapi       = windows.NewLazySystemDLL("wevtapi.dll")
	procEvtQuery  = wevtapi.NewProc("EvtQuery")
	procEvtNext   = wevtapi.NewProc("EvtNext")
	procEvtRender = wevtapi.NewProc("EvtRender")
	procEvtClose  = wevtapi.NewProc("EvtClose")
	procEvtCancel = wevtapi.NewProc("EvtCancel")
)

const (
	evtQueryChannelPath      = 0x1
	evtQueryForwardDirection = 0x100
	evtRenderEventXML        = 1
	evtBatch                 = 32

	errorNoMoreItems        = syscall.Errno(259)
	errorInsufficientBuf    = syscall.Errno(122)
	errorCallNotImplemented = syscall.Errno(120)
	errorTimeout            = syscall.Errno(1460)
	errorCancelled          = syscall.Errno(1223)
)

// defaultEventLog is Options.EventLog's default on Windows.
func defaultEventLog() EventLog { return LiveEventLog{} }

// LiveEventLog reads the Windows event log through wevtapi.dll: EvtQuery
// (channel path, forward direction: oldest first), EvtNext in batches of
// 32 with a 5 s timeout, EvtRender (EvtRenderEventXml), EvtClose. A ctx
// that ends cancels the query (EvtCancel) and Query returns ctx's error.
// A wevtapi.dll without these functions, or whose EvtQuery answers
// ERROR_CALL_NOT_IMPLEMENTED or returns no handle without setting an error
// (Wine 8's stub), gives an error wrapping ErrUnsupported.
type LiveEventLog struct{}

// Query returns the rendered XML of at most max events of channel that
// query selects.
func (LiveEventLog) Query(ctx context.Context, channel, query string, max int) ([]string, error) {
	for _, p := range []*windows.LazyProc{procEvtQuery, procEvtNext, procEvtRender, procEvtClose, procEvtCancel} {
		if err := p.Find(); err != nil {
			return nil, fmt.Errorf("%w: wevtapi.dll: %v", ErrUnsupported, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch, err := windows.UTF16PtrFromString(channel)
	if err != nil {
		return nil, fmt.Errorf("timeline: channel %q: %w", channel, err)
	}
	q, err := windows.UTF16PtrFromString(query)
	if err != nil {
		return nil, fmt.Errorf("timeline: query: %w", err)
	}
	rs, _, e := procEvtQuery.Call(0, uintptr(unsafe.Pointer(ch)), uintptr(unsafe.Pointer(q)), evtQueryChannelPath|evtQueryForwardDirection)
	if rs == 0 {
		if errno, ok := e.(syscall.Errno); ok && errno == 0 {
			// No handle and no error: a stub (Wine 8's EvtQuery is one).
			return nil, fmt.Errorf("%w: EvtQuery %s returned no handle and set no error (a stub)", ErrUnsupported, channel)
		}
		if errors.Is(e, errorCallNotImplemented) {
			return nil, fmt.Errorf("%w: EvtQuery %s: %v", ErrUnsupported, channel, e)
		}
		return nil, fmt.Errorf("timeline: EvtQuery %s %q: %w", channel, query, e)
	}
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		procEvtCancel.Call(rs)
	})
	defer func() {
		if !stop() {
			<-cancelled // EvtCancel ran or runs: let it end before the handle goes
		}
		procEvtClose.Call(rs)
	}()

	var out []string
	var handles [evtBatch]uintptr
	for len(out) < max {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var n uint32
		ok, _, e := procEvtNext.Call(rs, evtBatch, uintptr(unsafe.Pointer(&handles[0])), defaultEvtNextTimeoutMilli, 0, uintptr(unsafe.Pointer(&n)))
		if ok == 0 {
			switch {
			case errors.Is(e, errorNoMoreItems):
				return out, nil
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.Is(e, errorTimeout):
				return nil, fmt.Errorf("timeline: EvtNext %s: timed out after %d ms", channel, defaultEvtNextTimeoutMilli)
			}
			return nil, fmt.Errorf("timeline: EvtNext %s: %w", channel, e)
		}
		for _, h := range handles[:min(int(n), evtBatch)] {
			if len(out) < max {
				if xml, err := renderXML(h); err == nil {
					out = append(out, xml)
				}
			}
			procEvtClose.Call(h)
		}
	}
	return out, nil
}

// renderXML renders one event handle as XML (EvtRender's two-call form).
func renderXML(h uintptr) (string, error) {
	var used, props uint32
	ok, _, e := procEvtRender.Call(0, h, evtRenderEventXML, 0, 0, uintptr(unsafe.Pointer(&used)), uintptr(unsafe.Pointer(&props)))
	if ok == 0 && !errors.Is(e, errorInsufficientBuf) {
		return "", fmt.Errorf("timeline: EvtRender: %w", e)
	}
	if used == 0 || used > 2*maxEventXML {
		return "", fmt.Errorf("timeline: EvtRender: %d bytes", used)
	}
	buf := make([]uint16, used/2+1)
	ok, _, e = procEvtRender.Call(0, h, evtRenderEventXML, uintptr(len(buf)*2), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&used)), uintptr(unsafe.Pointer(&props)))
	if ok == 0 {
		return "", fmt.Errorf("timeline: EvtRender: %w", e)
	}
	return windows.UTF16ToString(buf), nil
}

// defaultResolveSID is upstream's SID resolver: LookupAccountSid's account
// name (no domain), cached; a domain account SID (S-1-5-21-...) on a
// domain-joined machine is looked up only while the AD domain's name
// resolves (within 2 s, checked once per minute), so an off-network laptop
// does not stall on an unreachable domain controller. A SID that cannot be
// resolved is returned as is, and tried again next time.
func defaultResolveSID() func(string) string {
	r := &sidResolver{cache: map[string]string{}}
	return r.resolve
}

type sidResolver struct {
	mu        sync.Mutex
	cache     map[string]string
	checked   time.Time
	domain    string
	reachable bool
}

func (r *sidResolver) resolve(sid string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name, ok := r.cache[sid]; ok {
		return name
	}
	if len(sid) > 9 && sid[:9] == "S-1-5-21-" {
		if time.Since(r.checked) > time.Minute {
			r.checked = time.Now()
			r.domain = dnsDomain()
			r.reachable = r.domain != "" && domainResolves(r.domain)
		}
		if r.domain != "" && !r.reachable {
			return sid
		}
	}
	s, err := windows.StringToSid(sid)
	if err != nil {
		return sid
	}
	name, _, _, err := s.LookupAccount("")
	if err != nil || name == "" {
		return sid
	}
	if len(r.cache) < 4096 {
		r.cache[sid] = name
	}
	return name
}

// dnsDomain is the machine's AD DNS domain, "" on a workgroup machine.
func dnsDomain() string {
	n := uint32(256)
	buf := make([]uint16, n)
	if err := windows.GetComputerNameEx(windows.ComputerNameDnsDomain, &buf[0], &n); err != nil {
		return ""
	}
	return windows.UTF16ToString(buf[:n])
}

// domainResolves reports whether domain resolves within 2 s.
func domainResolves(domain string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, domain)
	return err == nil && len(addrs) > 0
}
