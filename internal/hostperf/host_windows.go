package hostperf

import (
	"fmt"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ioctlDiskPerformance is IOCTL_DISK_PERFORMANCE:
// CTL_CODE(IOCTL_DISK_BASE, 0x0008, METHOD_BUFFERED, FILE_ANY_ACCESS).
const ioctlDiskPerformance = 0x00070020

// maxDriveMisses is how many drive numbers in a row may fail (missing, or
// not answering IOCTL_DISK_PERFORMANCE) before the probe for
// \\.\PhysicalDriveN stops; maxDrives bounds the probe.
const (
	maxDriveMisses = 4
	maxDrives      = 256
)

// Bits of MIB_IF_ROW2.InterfaceAndOperStatusFlags.
const (
	ifFlagHardwareInterface = 1 << 0
	ifFlagFilterInterface   = 1 << 1
)

// memoryStatusEx is MEMORYSTATUSEX.
type memoryStatusEx struct {
	length               uint32
	memoryLoad           uint32
	totalPhys            uint64
	availPhys            uint64
	totalPageFile        uint64
	availPageFile        uint64
	totalVirtual         uint64
	availVirtual         uint64
	availExtendedVirtual uint64
}

// diskPerformance is DISK_PERFORMANCE.
type diskPerformance struct {
	bytesRead           int64
	bytesWritten        int64
	readTime            int64
	writeTime           int64
	idleTime            int64
	readCount           uint32
	writeCount          uint32
	queueDepth          uint32
	splitCount          uint32
	queryTime           int64
	storageDeviceNumber uint32
	storageManagerName  [8]uint16
}

// winSource reads a Windows machine's figures.
type winSource struct {
	gen   uint64
	disks map[int]*devState
	nets  map[uint64]*devState
}

func newSystemSource() source {
	return &winSource{disks: make(map[int]*devState), nets: make(map[uint64]*devState)}
}

func (w *winSource) read(r *reading) error {
	var idle, kernel, user windows.Filetime
	if err := procGetSystemTimes.Find(); err != nil {
		return fmt.Errorf("hostperf: %w", err)
	}
	if ok, _, e := procGetSystemTimes.Call(uintptr(unsafe.Pointer(&idle)), uintptr(unsafe.Pointer(&kernel)), uintptr(unsafe.Pointer(&user))); ok == 0 {
		return fmt.Errorf("hostperf: GetSystemTimes: %w", e)
	}
	// Kernel time includes idle time.
	i, k, u := uint64(filetimeDuration(idle)), uint64(filetimeDuration(kernel)), uint64(filetimeDuration(user))
	if i > k {
		return fmt.Errorf("%w: GetSystemTimes: idle time %d exceeds kernel time %d", ErrMalformed, i, k)
	}
	r.cpuTotal = k + u
	r.cpuBusy = r.cpuTotal - i
	r.cpuCount = int(windows.GetActiveProcessorCount(windows.ALL_PROCESSOR_GROUPS))
	if r.cpuCount <= 0 {
		r.cpuCount = runtime.NumCPU()
	}

	var ms memoryStatusEx
	ms.length = uint32(unsafe.Sizeof(ms))
	if err := procGlobalMemoryStatusEx.Find(); err != nil {
		return fmt.Errorf("hostperf: %w", err)
	}
	if ok, _, e := procGlobalMemoryStatusEx.Call(uintptr(unsafe.Pointer(&ms))); ok == 0 {
		return fmt.Errorf("hostperf: GlobalMemoryStatusEx: %w", e)
	}
	r.memTotal, r.memUsed, r.swapTotal, r.swapUsed = memFigures(&ms)

	w.gen++
	r.diskRead, r.diskWritten = w.readDisks()
	var err error
	if r.netRx, r.netTx, err = w.readNets(); err != nil {
		return err
	}
	return nil
}

// memFigures derives memory and swap figures from MEMORYSTATUSEX; see the
// package documentation for the swap estimate.
func memFigures(ms *memoryStatusEx) (memTotal, memUsed, swapTotal, swapUsed uint64) {
	memTotal = ms.totalPhys
	if ms.availPhys < ms.totalPhys {
		memUsed = ms.totalPhys - ms.availPhys
	}
	if ms.totalPageFile > ms.totalPhys {
		swapTotal = ms.totalPageFile - ms.totalPhys
	}
	var commit uint64
	if ms.availPageFile < ms.totalPageFile {
		commit = ms.totalPageFile - ms.availPageFile
	}
	if commit > memUsed {
		swapUsed = min(commit-memUsed, swapTotal)
	}
	return memTotal, memUsed, swapTotal, swapUsed
}

// readDisks returns the bytes read and written by the physical drives since
// the previous read. A drive that cannot be opened or queried is skipped.
func (w *winSource) readDisks() (read, written uint64) {
	var sums devSums
	misses := 0
	for n := 0; n < maxDrives && misses < maxDriveMisses; n++ {
		perf, err := drivePerformance(n)
		if err != nil {
			misses++
			continue
		}
		misses = 0
		d := w.disks[n]
		if d == nil {
			d = &devState{class: classPhysical}
			w.disks[n] = d
		}
		dr, dw := d.advance(uint64(max(perf.bytesRead, 0)), uint64(max(perf.bytesWritten, 0)), w.gen)
		sums.add(d.class, dr, dw)
	}
	prune(w.disks, w.gen)
	return sums.result()
}

// drivePerformance queries \\.\PhysicalDrive<n>.
func drivePerformance(n int) (*diskPerformance, error) {
	name, err := windows.UTF16PtrFromString(`\\.\PhysicalDrive` + strconv.Itoa(n))
	if err != nil {
		return nil, err
	}
	// No access right is needed for IOCTL_DISK_PERFORMANCE (FILE_ANY_ACCESS).
	h, err := windows.CreateFile(name, 0, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		return nil, err
	}
	defer windows.CloseHandle(h)
	var perf diskPerformance
	var got uint32
	if err := windows.DeviceIoControl(h, ioctlDiskPerformance, nil, 0, (*byte)(unsafe.Pointer(&perf)), uint32(unsafe.Sizeof(perf)), &got, nil); err != nil {
		return nil, err
	}
	return &perf, nil
}

// readNets returns the bytes received and sent by the network interfaces
// since the previous read.
func (w *winSource) readNets() (rx, tx uint64, err error) {
	var tbl *windows.MibIfTable2
	if err := windows.GetIfTable2Ex(windows.MibIfTableNormal, &tbl); err != nil {
		return 0, 0, fmt.Errorf("hostperf: GetIfTable2Ex: %w", err)
	}
	defer windows.FreeMibTable(unsafe.Pointer(tbl))
	var sums devSums
	rows := unsafe.Slice(&tbl.Table[0], tbl.NumEntries)
	for i := range rows {
		row := &rows[i]
		if row.Type == windows.IF_TYPE_SOFTWARE_LOOPBACK || row.InterfaceAndOperStatusFlags&ifFlagFilterInterface != 0 {
			continue
		}
		d := w.nets[row.InterfaceLuid]
		if d == nil {
			d = &devState{class: classFallback}
			if row.InterfaceAndOperStatusFlags&ifFlagHardwareInterface != 0 {
				d.class = classPhysical
			}
			w.nets[row.InterfaceLuid] = d
		} else if d.gen == w.gen {
			continue // listed twice; count once
		}
		drx, dtx := d.advance(row.InOctets, row.OutOctets, w.gen)
		sums.add(d.class, drx, dtx)
	}
	prune(w.nets, w.gen)
	rx, tx = sums.result()
	return rx, tx, nil
}
