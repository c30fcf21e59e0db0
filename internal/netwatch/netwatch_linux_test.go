package netwatch

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The Linux tests run in a child process of the test binary placed in a
// new network namespace (CLONE_NEWNET, root only): there it is the
// namespace's administrator, and the changes it makes touch nothing
// outside. The namespace starts with one interface, lo, down and without
// addresses.

// childEnv marks the child process running inside the new namespace.
const childEnv = "NETWATCH_TEST_IN_NETNS"

// inNetns re-runs the named test in a child process in a new network
// namespace and reports its outcome; it returns false in the parent (which
// must then return) and true in the child.
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) != "" {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (CLONE_NEWNET)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	t.Logf("child in a new network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatal("the child did not run the test")
	}
	return false
}

// ifFlags sets or clears flag on the interface (SIOCSIFFLAGS).
func ifFlags(t *testing.T, name string, flag uint16, on bool) {
	t.Helper()
	withIfreq(t, name, func(fd int, r *unix.Ifreq) error {
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, r); err != nil {
			return err
		}
		f := r.Uint16()
		if on {
			f |= flag
		} else {
			f &^= flag
		}
		r.SetUint16(f)
		return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, r)
	})
}

// ifMTU sets the interface's MTU (SIOCSIFMTU).
func ifMTU(t *testing.T, name string, mtu uint32) {
	t.Helper()
	withIfreq(t, name, func(fd int, r *unix.Ifreq) error {
		r.SetUint32(mtu)
		return unix.IoctlIfreq(fd, unix.SIOCSIFMTU, r)
	})
}

func withIfreq(t *testing.T, name string, fn func(int, *unix.Ifreq) error) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	r, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(fd, r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// netlinkDo sends one rtnetlink request and waits for its acknowledgement.
func netlinkDo(t *testing.T, typ, flags uint16, body []byte, attrs ...[]byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	msg := append([]byte(nil), body...)
	for _, a := range attrs {
		msg = append(msg, a...)
	}
	hdr := make([]byte, unix.SizeofNlMsghdr)
	binary.NativeEndian.PutUint32(hdr[0:], uint32(len(hdr)+len(msg)))
	binary.NativeEndian.PutUint16(hdr[4:], typ)
	binary.NativeEndian.PutUint16(hdr[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(hdr[8:], 1)
	if err := unix.Sendto(fd, append(hdr, msg...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil || len(msgs) == 0 || msgs[0].Header.Type != unix.NLMSG_ERROR {
		t.Fatalf("netlink request %d: unexpected reply (%v)", typ, err)
	}
	if code := int32(binary.NativeEndian.Uint32(msgs[0].Data)); code != 0 {
		t.Fatalf("netlink request %d: %v", typ, syscall.Errno(-code))
	}
}

// rtattr encodes one route attribute.
func rtattr(typ uint16, v []byte) []byte {
	l := unix.SizeofRtAttr + len(v)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(l))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[unix.SizeofRtAttr:], v)
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func loIndex(t *testing.T) uint32 {
	t.Helper()
	var idx uint32
	withIfreq(t, "lo", func(fd int, r *unix.Ifreq) error {
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, r); err != nil {
			return err
		}
		idx = r.Uint32()
		return nil
	})
	return idx
}

// addAddr adds an IPv4 address to lo (RTM_NEWADDR).
func addAddr(t *testing.T, ip [4]byte, plen uint8) {
	t.Helper()
	ifa := make([]byte, unix.SizeofIfAddrmsg)
	ifa[0] = unix.AF_INET
	ifa[1] = plen
	ifa[3] = unix.RT_SCOPE_HOST
	binary.NativeEndian.PutUint32(ifa[4:], loIndex(t))
	netlinkDo(t, unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifa,
		rtattr(unix.IFA_LOCAL, ip[:]), rtattr(unix.IFA_ADDRESS, ip[:]))
}

// route adds (or deletes) an IPv4 default route through lo.
func route(t *testing.T, add bool, metric uint32) {
	t.Helper()
	rt := make([]byte, unix.SizeofRtMsg)
	rt[0] = unix.AF_INET
	rt[4] = unix.RT_TABLE_MAIN
	rt[5] = unix.RTPROT_BOOT
	rt[6] = unix.RT_SCOPE_LINK
	rt[7] = unix.RTN_UNICAST
	typ, flags := uint16(unix.RTM_DELROUTE), uint16(0)
	if add {
		typ, flags = unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL
	}
	netlinkDo(t, typ, flags, rt, rtattr(unix.RTA_OIF, u32(loIndex(t))), rtattr(unix.RTA_PRIORITY, u32(metric)))
}

// reading is one reading of the state after a notification.
type reading struct {
	changed bool
	cur     state
}

// watch starts Run; it returns the callback's channel and the readings'
// once the watcher is started.
func watch(t *testing.T) (changes chan struct{}, readings chan reading) {
	t.Helper()
	changes = make(chan struct{}, 100)
	readings = make(chan reading, 100)
	afterCompare = func(changed bool, cur state) { readings <- reading{changed, cur} }
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, func() { changes <- struct{}{} }, Options{Started: func() { close(started) }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		afterCompare = nil
	})
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("watcher not started")
	}
	return changes, readings
}

// has reports whether a state holds a line containing sub.
func (s state) has(sub string) bool {
	for _, l := range s {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// expect waits for a reading that changed and satisfies done, and checks
// that the callback was called for it.
func expect(t *testing.T, what string, changes chan struct{}, readings chan reading, done func(state) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-readings:
			if !r.changed || !done(r.cur) {
				continue
			}
			select { // the callback is called right after the reading
			case <-changes:
			case <-deadline:
				t.Fatalf("%s: the state changed, but the callback was not called", what)
			}
			for len(changes) > 0 { // earlier steps of the same change
				<-changes
			}
			return
		case <-deadline:
			t.Fatalf("%s: no change seen", what)
		}
	}
}

// An MTU change (a link notification that changes nothing followed) is
// read but not a change; a link going up, an address added, a default
// route added and removed, and the link going down are each seen.
func TestSeesChanges(t *testing.T) {
	if !inNetns(t) {
		return
	}
	changes, readings := watch(t)

	// The namespace is quiet: the first reading is the MTU change's.
	ifMTU(t, "lo", 1500)
	select {
	case r := <-readings:
		if r.changed || len(changes) != 0 {
			t.Fatalf("an MTU change counted as a network change: %q", r.cur)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the MTU change's notification was not read")
	}

	ifFlags(t, "lo", unix.IFF_UP, true) // in a new namespace lo starts down
	expect(t, "lo up", changes, readings, func(s state) bool { return s.has(" lo up,running,lower_up") })

	addAddr(t, [4]byte{10, 77, 0, 1}, 32)
	expect(t, "address added", changes, readings, func(s state) bool { return s.has("addr lo 10.77.0.1/32") })

	route(t, true, 7)
	expect(t, "default route added", changes, readings, func(s state) bool {
		return s.has("default inet table 254 via - dev lo metric 7")
	})

	route(t, false, 7)
	expect(t, "default route removed", changes, readings, func(s state) bool { return !s.has("default ") })

	ifFlags(t, "lo", unix.IFF_UP, false)
	expect(t, "lo down", changes, readings, func(s state) bool { return s.has(" lo down") })
}

// Run ends when its context ends, and leaves no file descriptor behind.
func TestStops(t *testing.T) {
	before := openFDs(t)
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- Run(ctx, func() {}, Options{Started: func() { close(started) }}) }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("Run: %v", err)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
	if after := openFDs(t); after > before {
		t.Fatalf("%d file descriptors open after, %d before", after, before)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
