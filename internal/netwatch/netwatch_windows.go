package netwatch

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The IP Helper calls its notification callbacks on a system thread. The
// one callback (windows.NewCallback slots are never freed, so there is
// one per process) only signals, without blocking, the channel of every
// running watcher; each watcher reads the state on its own goroutine.

var (
	cbOnce sync.Once
	cbPtr  uintptr
	subsMu sync.Mutex                      // serialises changes of subs
	subs   atomic.Pointer[[]chan struct{}] // copy on write; read by the callback
)

// notified is the IP Helper callback (caller context, row, notification
// type); it returns nothing (the uintptr is for NewCallback).
func notified(_, _, _ uintptr) uintptr {
	if p := subs.Load(); p != nil {
		for _, c := range *p {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
	return 0
}

func subscribe(c chan struct{}, on bool) {
	subsMu.Lock()
	defer subsMu.Unlock()
	var cur []chan struct{}
	if p := subs.Load(); p != nil {
		cur = *p
	}
	next := make([]chan struct{}, 0, len(cur)+1)
	for _, x := range cur {
		if x != c {
			next = append(next, x)
		}
	}
	if on {
		next = append(next, c)
	}
	subs.Store(&next)
}

func run(ctx context.Context, onChange func(), o Options) error {
	cbOnce.Do(func() { cbPtr = windows.NewCallback(notified) })
	sig := make(chan struct{}, 1)
	subscribe(sig, true)
	defer subscribe(sig, false)

	var handles []windows.Handle
	defer func() {
		// CancelMibChangeNotify2 returns once no callback of the
		// handle runs any more.
		for _, h := range handles {
			windows.CancelMibChangeNotify2(h)
		}
	}()
	for _, n := range []struct {
		name string
		fn   func(uint16, uintptr, unsafe.Pointer, bool, *windows.Handle) error
	}{
		{"NotifyIpInterfaceChange", windows.NotifyIpInterfaceChange},
		{"NotifyUnicastIpAddressChange", windows.NotifyUnicastIpAddressChange},
		{"NotifyRouteChange2", windows.NotifyRouteChange2},
	} {
		var h windows.Handle
		if err := n.fn(windows.AF_UNSPEC, cbPtr, nil, false, &h); err != nil {
			return fmt.Errorf("netwatch: %s: %w", n.name, err)
		}
		handles = append(handles, h)
	}
	prev, err := read()
	if err != nil {
		return err
	}
	o.Started()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sig:
		}
		cur, err := read()
		if err != nil {
			o.Log.Warn("network state not read", "err", err)
			continue
		}
		if compare(o.Log, prev, cur) {
			prev = cur
			onChange()
		}
	}
}

// read takes the adapters, their unicast addresses and gateways from
// GetAdaptersAddresses.
func read() (state, error) {
	const flags = windows.GAA_FLAG_INCLUDE_GATEWAYS | windows.GAA_FLAG_SKIP_ANYCAST |
		windows.GAA_FLAG_SKIP_MULTICAST | windows.GAA_FLAG_SKIP_DNS_SERVER
	size := uint32(16 << 10)
	var buf []byte
	for range 5 {
		buf = make([]byte, size)
		err := windows.GetAdaptersAddresses(windows.AF_UNSPEC, flags, 0, (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])), &size)
		if err == nil {
			break
		}
		if !errors.Is(err, windows.ERROR_BUFFER_OVERFLOW) {
			return nil, fmt.Errorf("netwatch: GetAdaptersAddresses: %w", err)
		}
		buf = nil
	}
	if buf == nil {
		return nil, errors.New("netwatch: GetAdaptersAddresses: the adapter list keeps growing")
	}
	var lines []string
	for a := (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])); a != nil; a = a.Next {
		if a.Length == 0 { // no adapter at all: an empty buffer
			break
		}
		name := windows.BytePtrToString(a.AdapterName)
		up := "down"
		if a.OperStatus == windows.IfOperStatusUp {
			up = "up"
		}
		lines = append(lines, fmt.Sprintf("link %s %s %s", name, windows.UTF16PtrToString(a.FriendlyName), up))
		for u := a.FirstUnicastAddress; u != nil; u = u.Next {
			if ip, ok := netip.AddrFromSlice(u.Address.IP()); ok {
				lines = append(lines, fmt.Sprintf("addr %s %s/%d", name, ip.Unmap(), u.OnLinkPrefixLength))
			}
		}
		for g := a.FirstGatewayAddress; g != nil; g = g.Next {
			if ip, ok := netip.AddrFromSlice(g.Address.IP()); ok {
				lines = append(lines, fmt.Sprintf("default via %s dev %s", ip.Unmap(), name))
			}
		}
	}
	return newState(lines), nil
}
