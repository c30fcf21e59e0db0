package netwatch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// groups are the rtnetlink multicast groups followed: links, addresses and
// routes of both families.
const groups = unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR |
	unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE

// upFlags are the interface flags whose change counts.
const upFlags = unix.IFF_UP | unix.IFF_RUNNING | unix.IFF_LOWER_UP

func run(ctx context.Context, onChange func(), o Options) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netwatch: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("netwatch: netlink bind: %w", err)
	}
	// A non-blocking fd handed to os.NewFile is served by the runtime's
	// netpoller: a Read parks the goroutine (no thread, no wakeup) until a
	// message arrives, and Close from another goroutine ends it.
	f := os.NewFile(uintptr(fd), "netlink-route")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("netwatch: %w", err)
	}
	prev, err := read()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	o.Started()

	buf := make([]byte, 64<<10)
	for {
		var relevant bool
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			var n int
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			if rerr == unix.EAGAIN {
				return false
			}
			if rerr == nil {
				relevant = interesting(buf[:n])
			}
			return true
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("netwatch: netlink read: %w", err)
		}
		switch {
		case rerr == nil, rerr == unix.EINTR:
		case rerr == unix.ENOBUFS:
			// The socket's queue overflowed: notifications were lost,
			// so the state is read again.
			relevant = true
		default:
			return fmt.Errorf("netwatch: netlink read: %w", rerr)
		}
		// Take whatever else is queued before reading the state once.
		rc.Control(func(fd uintptr) {
			for {
				n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
				if err == unix.ENOBUFS || err == unix.EINTR {
					relevant = relevant || err == unix.ENOBUFS
					continue
				}
				if err != nil {
					return
				}
				relevant = interesting(buf[:n]) || relevant
			}
		})
		if !relevant {
			continue
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

// interesting reports whether notifications may change the state: any
// link or address message, a route message only for a default route.
func interesting(b []byte) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return true // cannot tell: read the state
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_NEWADDR, unix.RTM_DELADDR:
			return true
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			if len(m.Data) < unix.SizeofRtMsg || m.Data[1] == 0 { // rtm_dst_len
				return true
			}
		}
	}
	return false
}

// read dumps links, addresses and routes into a state.
func read() (state, error) {
	var lines []string
	names := map[int32]string{}
	err := dump(unix.RTM_GETLINK, func(m syscall.NetlinkMessage) {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			return
		}
		ifi := (*unix.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
		name := ""
		attrs, _ := syscall.ParseNetlinkRouteAttr(&m)
		for _, a := range attrs {
			if a.Attr.Type == unix.IFLA_IFNAME {
				name = strings.TrimRight(string(a.Value), "\x00")
			}
		}
		names[ifi.Index] = name
		lines = append(lines, fmt.Sprintf("link %d %s %s", ifi.Index, name, flagNames(ifi.Flags&upFlags)))
	})
	if err != nil {
		return nil, err
	}
	ifname := func(i int32) string {
		if n, ok := names[i]; ok {
			return n
		}
		return fmt.Sprint(i)
	}
	err = dump(unix.RTM_GETADDR, func(m syscall.NetlinkMessage) {
		if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
			return
		}
		ifa := (*unix.IfAddrmsg)(unsafe.Pointer(&m.Data[0]))
		var local, address []byte
		attrs, _ := syscall.ParseNetlinkRouteAttr(&m)
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFA_LOCAL:
				local = a.Value
			case unix.IFA_ADDRESS:
				address = a.Value
			}
		}
		if local == nil { // IFA_LOCAL is the address; IFA_ADDRESS the peer's on point-to-point links
			local = address
		}
		ip, ok := netip.AddrFromSlice(local)
		if !ok {
			return
		}
		lines = append(lines, fmt.Sprintf("addr %s %s/%d", ifname(int32(ifa.Index)), ip, ifa.Prefixlen))
	})
	if err != nil {
		return nil, err
	}
	err = dump(unix.RTM_GETROUTE, func(m syscall.NetlinkMessage) {
		if m.Header.Type != unix.RTM_NEWROUTE || len(m.Data) < unix.SizeofRtMsg {
			return
		}
		rt := (*unix.RtMsg)(unsafe.Pointer(&m.Data[0]))
		if rt.Dst_len != 0 || rt.Type != unix.RTN_UNICAST || rt.Table == unix.RT_TABLE_LOCAL {
			return
		}
		table := uint32(rt.Table)
		via, dev, metric := "-", "-", uint32(0)
		attrs, _ := syscall.ParseNetlinkRouteAttr(&m)
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.RTA_TABLE:
				if len(a.Value) == 4 {
					table = binary.NativeEndian.Uint32(a.Value)
				}
			case unix.RTA_GATEWAY:
				if ip, ok := netip.AddrFromSlice(a.Value); ok {
					via = ip.String()
				}
			case unix.RTA_OIF:
				if len(a.Value) == 4 {
					dev = ifname(int32(binary.NativeEndian.Uint32(a.Value)))
				}
			case unix.RTA_PRIORITY:
				if len(a.Value) == 4 {
					metric = binary.NativeEndian.Uint32(a.Value)
				}
			}
		}
		fam := "inet"
		if rt.Family == unix.AF_INET6 {
			fam = "inet6"
		}
		lines = append(lines, fmt.Sprintf("default %s table %d via %s dev %s metric %d", fam, table, via, dev, metric))
	})
	if err != nil {
		return nil, err
	}
	return newState(lines), nil
}

// dump runs one rtnetlink dump request and hands each message to fn.
func dump(req int, fn func(syscall.NetlinkMessage)) error {
	b, err := syscall.NetlinkRIB(req, unix.AF_UNSPEC)
	if err != nil {
		return fmt.Errorf("netwatch: netlink dump %d: %w", req, err)
	}
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return fmt.Errorf("netwatch: netlink dump %d: %w", req, err)
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR {
			return fmt.Errorf("netwatch: netlink dump %d: %w", req, errors.New("error reply"))
		}
		fn(m)
	}
	return nil
}

func flagNames(f uint32) string {
	var s []string
	if f&unix.IFF_UP != 0 {
		s = append(s, "up")
	}
	if f&unix.IFF_RUNNING != 0 {
		s = append(s, "running")
	}
	if f&unix.IFF_LOWER_UP != 0 {
		s = append(s, "lower_up")
	}
	if len(s) == 0 {
		return "down"
	}
	return strings.Join(s, ",")
}
