package inventory

// The Linux collector. Its parsers read through an fs.FS rooted at the
// machine's "/" (CollectorOptions.Root) so tests can feed them fixtures and
// garbage; the few things that are not files (statfs, uname, the network
// interface list, rpm) are functions in linuxDeps. The parsers build on every
// OS (so their tests also run under Wine); only the defaults that make system
// calls are Linux-only (linux_sys_linux.go).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// Linux class names, the keys of the Linux collector's Data.
const (
	ClassCPU         = "cpu"         // hw: one object per CPU package.
	ClassMemory      = "memory"      // hw: installed memory.
	ClassDMI         = "dmi"         // hw: /sys/class/dmi/id.
	ClassBlock       = "block"       // hw: physical block devices.
	ClassFilesystems = "filesystems" // hw: mounted disk file systems.
	ClassOSRelease   = "os_release"  // os: /etc/os-release.
	ClassKernel      = "kernel"      // os: the running kernel (uname).
	ClassHost        = "host"        // os: host name and machine id.
	ClassBoot        = "boot"        // os: the current boot.
	ClassInterfaces  = "interfaces"  // net: network interfaces.
	ClassDNS         = "dns"         // net: resolver configuration.
	ClassPackages    = "packages"    // sw: installed packages (dpkg, rpm, apk).
)

// maxFileSize bounds what is read of one file, so garbage cannot exhaust
// memory; a larger file is reported malformed.
const (
	maxSmallFile = 4 << 20
	maxDBFile    = 256 << 20
)

// netIface is what the collector needs of a network interface.
type netIface struct {
	Name  string
	MAC   string
	MTU   int
	Flags net.Flags
	Addrs []string // CIDR notation
}

// linuxDeps are the non-file inputs of the Linux collector.
type linuxDeps struct {
	fsys       fs.FS
	interfaces func() ([]netIface, error)
	statfs     func(mountPoint string) (sizeBytes uint64, err error)
	machine    func() (string, error)
	rpm        func(ctx context.Context) ([]byte, error) // nil: rpm not installed
}

type linuxCollector struct {
	deps    linuxDeps
	timeout time.Duration
	g       guard

	mu    sync.Mutex
	btime map[string]int64 // boot_id → first boot time read for it
}

func newLinuxCollector(deps linuxDeps, timeout time.Duration) *linuxCollector {
	if deps.interfaces == nil {
		deps.interfaces = goInterfaces
	}
	if deps.statfs == nil {
		deps.statfs = func(string) (uint64, error) { return 0, ErrUnsupported }
	}
	if deps.machine == nil {
		deps.machine = func() (string, error) { return "", ErrUnsupported }
	}
	return &linuxCollector{deps: deps, timeout: timeout, btime: map[string]int64{}}
}

func (c *linuxCollector) Name() string { return "linux" }

func (c *linuxCollector) CollectCategory(ctx context.Context, category string) (map[string]any, error) {
	var srcs []source
	plain := func(class string, f func() (result, error)) source {
		return source{Class: class, Run: func(context.Context) (result, error) { return f() }}
	}
	switch category {
	case wire.CategoryHW:
		srcs = []source{
			plain(ClassCPU, c.cpu),
			plain(ClassMemory, c.memory),
			plain(ClassDMI, c.dmi),
			plain(ClassBlock, c.block),
			plain(ClassFilesystems, c.filesystems),
		}
	case wire.CategoryOS:
		srcs = []source{
			plain(ClassOSRelease, c.osRelease),
			plain(ClassKernel, c.kernel),
			plain(ClassHost, c.host),
			plain(ClassBoot, c.boot),
		}
	case wire.CategoryNet:
		srcs = []source{
			plain(ClassInterfaces, c.netInterfaces),
			plain(ClassDNS, c.dns),
		}
	case wire.CategorySW:
		srcs = []source{{Class: ClassPackages, Run: c.packages}}
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownCategory, category)
	}
	return runSources(ctx, &c.g, c.timeout, srcs)
}

// readFile reads name from fsys, at most limit bytes.
func readFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("inventory: read /%s: %w", name, unwrapPath(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("inventory: read /%s: %w", name, unwrapPath(err))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: /%s: larger than %d bytes", ErrMalformed, name, limit)
	}
	return b, nil
}

// unwrapPath drops the *PathError wrapper, whose path would be the host's
// and not the one under the collector's root.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readTrim reads a small file and trims spaces; "" when it cannot be read.
func readTrim(fsys fs.FS, name string) string {
	b, err := readFile(fsys, name, 64<<10)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func malformed(file string, line int, format string, args ...any) error {
	if line > 0 {
		return fmt.Errorf("%w: /%s line %d: %s", ErrMalformed, file, line, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("%w: /%s: %s", ErrMalformed, file, fmt.Sprintf(format, args...))
}

// ---- hw ----

// cpu groups /proc/cpuinfo by physical package: vendor_id, model_name,
// cpu_family, model, stepping, cpu_implementer, cpu_part (those present),
// cores, logical_processors. Clock speeds and bogomips are left out: they
// change from one read to the next.
func (c *linuxCollector) cpu() (result, error) {
	const file = "proc/cpuinfo"
	b, err := readFile(c.deps.fsys, file, maxSmallFile)
	if err != nil {
		return result{}, err
	}
	var res result
	type pkg struct {
		fields  map[string]any
		logical int64
		cores   map[string]bool
		cpuCore int64
	}
	pkgs := map[string]*pkg{}
	var order []string
	type val struct {
		v    string
		line int
	}
	cur := map[string]val{}
	flush := func(line int) {
		if len(cur) == 0 {
			return
		}
		defer clear(cur)
		if _, ok := cur["processor"]; !ok {
			res.Problems = append(res.Problems, problem{Err: malformed(file, line, "block without a processor field")})
			return
		}
		id := cur["physical id"].v
		p := pkgs[id]
		if p == nil {
			p = &pkg{fields: map[string]any{}, cores: map[string]bool{}}
			pkgs[id] = p
			order = append(order, id)
		}
		p.logical++
		if v, ok := cur["core id"]; ok {
			p.cores[v.v] = true
		}
		for _, f := range [...]struct{ key, name string }{{"vendor_id", "vendor_id"}, {"model name", "model_name"}, {"CPU implementer", "cpu_implementer"}, {"CPU part", "cpu_part"}} {
			if v, ok := cur[f.key]; ok && v.v != "" {
				p.fields[f.name] = v.v
			}
		}
		for _, f := range [...]struct{ key, name string }{{"cpu family", "cpu_family"}, {"model", "model"}, {"stepping", "stepping"}, {"cpu cores", "cores"}} {
			v, ok := cur[f.key]
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(v.v, 0, 64)
			if err != nil {
				res.Problems = append(res.Problems, problem{Property: f.name, Err: malformed(file, v.line, "%s: not a number: %q", f.key, clip(v.v))})
				continue
			}
			if f.name == "cores" {
				p.cpuCore = n
				continue
			}
			p.fields[f.name] = n
		}
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			flush(i + 1)
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			res.Problems = append(res.Problems, problem{Err: malformed(file, i+1, "not a key: value line")})
			continue
		}
		cur[strings.TrimSpace(k)] = val{strings.TrimSpace(v), i + 1}
	}
	flush(len(lines))
	if len(pkgs) == 0 {
		return result{}, malformed(file, 0, "no processor found")
	}
	for _, id := range order {
		p := pkgs[id]
		row := p.fields
		row["logical_processors"] = p.logical
		switch {
		case len(p.cores) > 0:
			row["cores"] = int64(len(p.cores))
		case p.cpuCore > 0:
			row["cores"] = p.cpuCore
		}
		if id != "" {
			if n, err := strconv.ParseInt(id, 10, 64); err == nil {
				row["socket"] = n
			}
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// memory reads MemTotal from /proc/meminfo as total_bytes. Free and
// available memory are left out (volatile).
func (c *linuxCollector) memory() (result, error) {
	const file = "proc/meminfo"
	b, err := readFile(c.deps.fsys, file, maxSmallFile)
	if err != nil {
		return result{}, err
	}
	for i, l := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(l, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return result{}, malformed(file, i+1, "MemTotal without a value")
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return result{}, malformed(file, i+1, "MemTotal: not a number: %q", clip(f[0]))
		}
		mult := uint64(1)
		if len(f) > 1 {
			switch strings.ToLower(f[1]) {
			case "kb":
				mult = 1024
			default:
				return result{}, malformed(file, i+1, "MemTotal: unknown unit %q", clip(f[1]))
			}
		}
		return result{Rows: []map[string]any{{"total_bytes": n * mult}}}, nil
	}
	return result{}, malformed(file, 0, "no MemTotal")
}

// dmiFields are the files of /sys/class/dmi/id reported by dmi; those that
// only root can read (serials, uuid) are simply absent for other users.
var dmiFields = []string{
	"sys_vendor", "product_name", "product_version", "product_serial", "product_uuid", "product_sku", "product_family",
	"board_vendor", "board_name", "board_version", "board_serial", "board_asset_tag",
	"bios_vendor", "bios_version", "bios_date", "bios_release",
	"chassis_type", "chassis_vendor", "chassis_version", "chassis_serial", "chassis_asset_tag",
}

// dmi reads /sys/class/dmi/id as one object; none when the machine has no
// DMI (many ARM boards, some containers).
func (c *linuxCollector) dmi() (result, error) {
	const dir = "sys/class/dmi/id"
	if _, err := fs.Stat(c.deps.fsys, dir); errors.Is(err, fs.ErrNotExist) {
		return result{Rows: []map[string]any{}}, nil
	}
	row := map[string]any{}
	for _, f := range dmiFields {
		if v := readTrim(c.deps.fsys, dir+"/"+f); v != "" {
			row[f] = v
		}
	}
	return result{Rows: []map[string]any{row}}, nil
}

// block lists the block devices of /sys/block that are not virtual (loop,
// ram, zram, device-mapper): name, size_bytes, model, vendor, serial,
// rotational, removable.
func (c *linuxCollector) block() (result, error) {
	const dir = "sys/block"
	ents, err := fs.ReadDir(c.deps.fsys, dir)
	if err != nil {
		return result{}, fmt.Errorf("inventory: read /%s: %w", dir, unwrapPath(err))
	}
	var res result
	res.Rows = []map[string]any{}
	for _, e := range ents {
		name := e.Name()
		p := dir + "/" + name
		if target, err := fs.ReadLink(c.deps.fsys, p); err == nil && strings.Contains(target, "/virtual/") {
			continue
		}
		row := map[string]any{"name": name}
		if s := readTrim(c.deps.fsys, p+"/size"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				res.Problems = append(res.Problems, problem{Property: "size_bytes", Err: malformed(p+"/size", 0, "not a number: %q", clip(s))})
			} else {
				row["size_bytes"] = n * 512
			}
		}
		for _, f := range []struct{ file, key string }{{"device/model", "model"}, {"device/vendor", "vendor"}, {"device/serial", "serial"}} {
			if v := readTrim(c.deps.fsys, p+"/"+f.file); v != "" {
				row[f.key] = v
			}
		}
		for _, f := range []struct{ file, key string }{{"queue/rotational", "rotational"}, {"removable", "removable"}} {
			switch readTrim(c.deps.fsys, p+"/"+f.file) {
			case "0":
				row[f.key] = false
			case "1":
				row[f.key] = true
			case "":
			default:
				res.Problems = append(res.Problems, problem{Property: f.key, Err: malformed(p+"/"+f.file, 0, "not 0 or 1")})
			}
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// netFS are network file systems reported although /proc/filesystems marks
// them nodev (as Windows reports mapped network drives).
var netFS = []string{"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs"}

// filesystems lists mounts of disk (and network) file systems from
// /proc/self/mountinfo: mount_point, device, fs_type, size_bytes (statfs).
// Pseudo file systems (nodev in /proc/filesystems), squashfs and loop
// devices (snaps) are left out, and so are free space and mount options
// (volatile).
func (c *linuxCollector) filesystems() (result, error) {
	const file = "proc/self/mountinfo"
	b, err := readFile(c.deps.fsys, file, maxSmallFile)
	if err != nil {
		return result{}, err
	}
	nodev := map[string]bool{}
	if fb, err := readFile(c.deps.fsys, "proc/filesystems", maxSmallFile); err == nil {
		for _, l := range strings.Split(string(fb), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && f[0] == "nodev" {
				nodev[f[1]] = true
			}
		}
	}
	var res result
	byMount := map[string]map[string]any{}
	var order []string
	for i, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		f := strings.Fields(l)
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+3 {
			res.Problems = append(res.Problems, problem{Err: malformed(file, i+1, "not a mountinfo line")})
			continue
		}
		mp, fsType, dev := unescapeMount(f[4]), f[sep+1], unescapeMount(f[sep+2])
		if (nodev[fsType] && !slices.Contains(netFS, fsType)) || fsType == "squashfs" || strings.HasPrefix(dev, "/dev/loop") {
			continue
		}
		row := map[string]any{"mount_point": mp, "device": dev, "fs_type": fsType}
		size, err := c.deps.statfs(mp)
		if err != nil {
			res.Problems = append(res.Problems, problem{Property: "size_bytes", Err: fmt.Errorf("inventory: statfs %s: %w", mp, unwrapPath(err))})
		} else {
			row["size_bytes"] = size
		}
		if _, seen := byMount[mp]; !seen {
			order = append(order, mp)
		}
		byMount[mp] = row // a later mount on the same point hides the earlier
	}
	res.Rows = []map[string]any{}
	for _, mp := range order {
		res.Rows = append(res.Rows, byMount[mp])
	}
	return res, nil
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ---- os ----

// osRelease reads /etc/os-release (or /usr/lib/os-release) as one object
// whose keys are the file's keys in lower case (id, name, version_id,
// pretty_name, ...).
func (c *linuxCollector) osRelease() (result, error) {
	file := "etc/os-release"
	b, err := readFile(c.deps.fsys, file, maxSmallFile)
	if errors.Is(err, fs.ErrNotExist) {
		file = "usr/lib/os-release"
		b, err = readFile(c.deps.fsys, file, maxSmallFile)
	}
	if err != nil {
		return result{}, err
	}
	var res result
	row := map[string]any{}
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || !validEnvKey(k) {
			res.Problems = append(res.Problems, problem{Err: malformed(file, i+1, "not a KEY=value line")})
			continue
		}
		uv, err := unquoteShell(v)
		if err != nil {
			res.Problems = append(res.Problems, problem{Property: strings.ToLower(k), Err: malformed(file, i+1, "%v", err)})
			continue
		}
		row[strings.ToLower(k)] = uv
	}
	if len(row) == 0 {
		return result{}, malformed(file, 0, "no KEY=value line")
	}
	res.Rows = []map[string]any{row}
	return res, nil
}

func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// unquoteShell unquotes an os-release value: bare, "double" (with \ escapes)
// or 'single' quoted.
func unquoteShell(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch q := v[0]; q {
	case '"', '\'':
		if len(v) < 2 || v[len(v)-1] != q {
			return "", errors.New("unterminated quote")
		}
		v = v[1 : len(v)-1]
		if q == '\'' {
			return v, nil
		}
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		return b.String(), nil
	}
	if strings.ContainsAny(v, " \t\"'`$") {
		return "", errors.New("unquoted value with special characters")
	}
	return v, nil
}

// kernel reports the running kernel: name, release, version, machine.
func (c *linuxCollector) kernel() (result, error) {
	row := map[string]any{}
	var res result
	for _, f := range []struct{ file, key string }{
		{"proc/sys/kernel/ostype", "name"}, {"proc/sys/kernel/osrelease", "release"}, {"proc/sys/kernel/version", "version"},
	} {
		b, err := readFile(c.deps.fsys, f.file, 64<<10)
		if err != nil {
			res.Problems = append(res.Problems, problem{Property: f.key, Err: err})
			continue
		}
		row[f.key] = strings.TrimSpace(string(b))
	}
	if m, err := c.deps.machine(); err != nil {
		res.Problems = append(res.Problems, problem{Property: "machine", Err: fmt.Errorf("inventory: uname: %w", err)})
	} else {
		row["machine"] = m
	}
	res.Rows = []map[string]any{row}
	return res, nil
}

// host reports hostname, domain_name (NIS, when set) and machine_id.
func (c *linuxCollector) host() (result, error) {
	row := map[string]any{}
	var res result
	if v := readTrim(c.deps.fsys, "proc/sys/kernel/hostname"); v != "" {
		row["hostname"] = v
	} else {
		res.Problems = append(res.Problems, problem{Property: "hostname", Err: malformed("proc/sys/kernel/hostname", 0, "missing or empty")})
	}
	if v := readTrim(c.deps.fsys, "proc/sys/kernel/domainname"); v != "" && v != "(none)" {
		row["domain_name"] = v
	}
	if v := readTrim(c.deps.fsys, "etc/machine-id"); v != "" {
		row["machine_id"] = v
	}
	res.Rows = []map[string]any{row}
	return res, nil
}

// boot reports boot_id and booted_at (RFC 3339 UTC) of the current boot.
// The kernel derives btime from the wall clock, so it can move by a second
// when the clock is adjusted; the first value read for a boot_id is kept for
// the life of the collector so the hash does not flap.
func (c *linuxCollector) boot() (result, error) {
	id := readTrim(c.deps.fsys, "proc/sys/kernel/random/boot_id")
	if id == "" {
		return result{}, malformed("proc/sys/kernel/random/boot_id", 0, "missing or empty")
	}
	row := map[string]any{"boot_id": id}
	var res result
	c.mu.Lock()
	bt, ok := c.btime[id]
	c.mu.Unlock()
	if !ok {
		const file = "proc/stat"
		b, err := readFile(c.deps.fsys, file, maxSmallFile)
		if err != nil {
			res.Problems = append(res.Problems, problem{Property: "booted_at", Err: err})
		} else {
			for i, l := range strings.Split(string(b), "\n") {
				if v, found := strings.CutPrefix(l, "btime "); found {
					n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					if err != nil || n <= 0 {
						res.Problems = append(res.Problems, problem{Property: "booted_at", Err: malformed(file, i+1, "btime: not a positive number")})
						break
					}
					bt, ok = n, true
					break
				}
			}
			if !ok && len(res.Problems) == 0 {
				res.Problems = append(res.Problems, problem{Property: "booted_at", Err: malformed(file, 0, "no btime")})
			}
		}
		if ok {
			c.mu.Lock()
			clear(c.btime) // one boot at a time
			c.btime[id] = bt
			c.mu.Unlock()
		}
	}
	if ok {
		row["booted_at"] = time.Unix(bt, 0).UTC().Format(time.RFC3339)
	}
	res.Rows = []map[string]any{row}
	return res, nil
}

// ---- net ----

func goInterfaces() ([]netIface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]netIface, 0, len(ifs))
	for _, i := range ifs {
		ni := netIface{Name: i.Name, MAC: i.HardwareAddr.String(), MTU: i.MTU, Flags: i.Flags}
		addrs, err := i.Addrs()
		if err == nil {
			for _, a := range addrs {
				ni.Addrs = append(ni.Addrs, a.String())
			}
		}
		out = append(out, ni)
	}
	return out, nil
}

// netInterfaces lists network interfaces: name, mac, mtu, flags (up,
// broadcast, multicast, pointtopoint; not running, which is link state),
// addresses (CIDR, sorted; temporary IPv6 privacy addresses left out since
// they rotate), type (ARPHRD number from sysfs), driver, gateways (IPv4
// default routes through it). Loopback is left out, as Windows does, and so
// are virtual interfaces (under /sys/devices/virtual) that are down or have
// only link-local addresses, such as container veth pairs that come and go.
func (c *linuxCollector) netInterfaces() (result, error) {
	ifs, err := c.deps.interfaces()
	if err != nil {
		return result{}, fmt.Errorf("inventory: list interfaces: %w", err)
	}
	var res result
	temp := c.tempIPv6(&res)
	gws := c.defaultGateways(&res)
	res.Rows = []map[string]any{}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			continue
		}
		var addrs []string
		global := false
		for _, a := range i.Addrs {
			ip, _, err := net.ParseCIDR(a)
			if err != nil {
				res.Problems = append(res.Problems, problem{Property: "addresses", Err: fmt.Errorf("%w: interface %s: address %q", ErrMalformed, i.Name, clip(a))})
				continue
			}
			if temp[ip.String()] {
				continue
			}
			if !ip.IsLinkLocalUnicast() {
				global = true
			}
			addrs = append(addrs, a)
		}
		sysPath := "sys/class/net/" + i.Name
		virtual := false
		if target, err := fs.ReadLink(c.deps.fsys, sysPath); err == nil && strings.Contains(target, "/virtual/") {
			virtual = true
		}
		if virtual && (i.Flags&net.FlagUp == 0 || !global) {
			continue
		}
		slices.Sort(addrs)
		row := map[string]any{"name": i.Name, "mtu": int64(i.MTU), "flags": ifFlags(i.Flags), "addresses": orEmpty(addrs)}
		if i.MAC != "" {
			row["mac"] = i.MAC
		}
		if t := readTrim(c.deps.fsys, sysPath+"/type"); t != "" {
			if n, err := strconv.ParseInt(t, 10, 64); err == nil {
				row["type"] = n
			} else {
				res.Problems = append(res.Problems, problem{Property: "type", Err: malformed(sysPath+"/type", 0, "not a number")})
			}
		}
		if target, err := fs.ReadLink(c.deps.fsys, sysPath+"/device/driver"); err == nil {
			row["driver"] = path.Base(target)
		}
		if g := gws[i.Name]; len(g) > 0 {
			row["gateways"] = g
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func ifFlags(f net.Flags) []string {
	var out []string
	for _, x := range []struct {
		f    net.Flags
		name string
	}{{net.FlagUp, "up"}, {net.FlagBroadcast, "broadcast"}, {net.FlagPointToPoint, "pointtopoint"}, {net.FlagMulticast, "multicast"}} {
		if f&x.f != 0 {
			out = append(out, x.name)
		}
	}
	return orEmpty(out)
}

// tempIPv6 returns the temporary (privacy) IPv6 addresses of
// /proc/net/if_inet6 (flag IFA_F_TEMPORARY).
func (c *linuxCollector) tempIPv6(res *result) map[string]bool {
	const file = "proc/net/if_inet6"
	b, err := readFile(c.deps.fsys, file, maxSmallFile)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for i, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 6 || len(f[0]) != 32 {
			res.Problems = append(res.Problems, problem{Property: "addresses", Err: malformed(file, i+1, "not an if_inet6 line")})
			continue
		}
		flags, err1 := strconv.ParseUint(f[4], 16, 32)
		raw, err2 := hexBytes(f[0])
		if err1 != nil || err2 != nil {
			res.Problems = append(res.Problems, problem{Property: "addresses", Err: malformed(file, i+1, "not an if_inet6 line")})
			continue
		}
		if flags&0x01 != 0 {
			out[net.IP(raw).String()] = true
		}
	}
	return out
}

func hexBytes(s string) ([]byte, error) {
	out := make([]byte, len(s)/2)
	for i := range out {
		n, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, err
		}
		out[i] = byte(n)
	}
	return out, nil
}

// defaultGateways reads IPv4 default routes from /proc/net/route.
func (c *linuxCollector) defaultGateways(res *result) map[string][]string {
	const file = "proc/net/route"
	b, err := readFile(c.deps.fsys, file, maxSmallFile)
	if err != nil {
		return nil
	}
	out := map[string][]string{}
	for i, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if i == 0 || len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			res.Problems = append(res.Problems, problem{Property: "gateways", Err: malformed(file, i+1, "not a route line")})
			continue
		}
		if f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		g, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			res.Problems = append(res.Problems, problem{Property: "gateways", Err: malformed(file, i+1, "gateway not hex")})
			continue
		}
		ip := net.IPv4(byte(g), byte(g>>8), byte(g>>16), byte(g>>24)).String() // little endian
		if !slices.Contains(out[f[0]], ip) {
			out[f[0]] = append(out[f[0]], ip)
			slices.Sort(out[f[0]])
		}
	}
	return out
}

// dns reads nameservers, search (domains) and options from /etc/resolv.conf.
func (c *linuxCollector) dns() (result, error) {
	const file = "etc/resolv.conf"
	b, err := readFile(c.deps.fsys, file, maxSmallFile)
	if errors.Is(err, fs.ErrNotExist) {
		return result{Rows: []map[string]any{}}, nil
	}
	if err != nil {
		return result{}, err
	}
	ns, search := []string{}, []string{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			ns = append(ns, f[1])
		case "search", "domain":
			search = f[1:]
		}
	}
	return result{Rows: []map[string]any{{"nameservers": ns, "search": search}}}, nil
}

// ---- sw ----

// packages lists installed packages: name, version, arch, manager (dpkg,
// rpm, apk), from the dpkg status file, `rpm -qa` and the apk database,
// whichever exist. Each record that cannot be parsed is a problem, not a
// failure.
func (c *linuxCollector) packages(ctx context.Context) (result, error) {
	var res result
	res.Rows = []map[string]any{}
	found := false
	if b, err := readFile(c.deps.fsys, "var/lib/dpkg/status", maxDBFile); err == nil {
		found = true
		parseDpkgStatus(b, &res)
	} else if !errors.Is(err, fs.ErrNotExist) {
		res.Problems = append(res.Problems, problem{Err: err})
		found = true
	}
	if b, err := readFile(c.deps.fsys, "lib/apk/db/installed", maxDBFile); err == nil {
		found = true
		parseApk(b, &res)
	} else if !errors.Is(err, fs.ErrNotExist) {
		res.Problems = append(res.Problems, problem{Err: err})
		found = true
	}
	if c.deps.rpm != nil {
		found = true
		b, err := c.deps.rpm(ctx)
		if err != nil {
			res.Problems = append(res.Problems, problem{Err: fmt.Errorf("inventory: rpm -qa: %w", err)})
		} else {
			parseRPM(b, &res)
		}
	}
	if !found {
		res.Problems = append(res.Problems, problem{Err: errors.New("inventory: no package database found (dpkg, rpm, apk)")})
	}
	return res, nil
}

// parseDpkgStatus parses dpkg's status file: paragraphs of "Field: value"
// lines (continuations start with a space), kept when Status ends in
// "installed".
func parseDpkgStatus(b []byte, res *result) {
	const file = "var/lib/dpkg/status"
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var pkg, ver, arch, status string
	start, n := 0, 0
	inPara := false
	flush := func() {
		if !inPara {
			return
		}
		inPara = false
		defer func() { pkg, ver, arch, status = "", "", "", "" }()
		if pkg == "" {
			res.Problems = append(res.Problems, problem{Err: malformed(file, start, "record without Package")})
			return
		}
		f := strings.Fields(status)
		if len(f) != 3 {
			res.Problems = append(res.Problems, problem{Err: malformed(file, start, "package %s: bad Status %q", clip(pkg), clip(status))})
			return
		}
		if f[2] != "installed" {
			return
		}
		row := map[string]any{"name": pkg, "version": ver, "manager": "dpkg"}
		if arch != "" {
			row["arch"] = arch
		}
		res.Rows = append(res.Rows, row)
	}
	for sc.Scan() {
		n++
		l := sc.Bytes() // only the four wanted fields are copied
		if len(bytes.TrimSpace(l)) == 0 {
			flush()
			continue
		}
		if !inPara {
			inPara, start = true, n
		}
		if l[0] == ' ' || l[0] == '\t' {
			continue // continuation line
		}
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			res.Problems = append(res.Problems, problem{Err: malformed(file, n, "not a Field: value line")})
			continue
		}
		switch string(k) { // no allocation
		case "Package":
			pkg = string(bytes.TrimSpace(v))
		case "Version":
			ver = string(bytes.TrimSpace(v))
		case "Architecture":
			arch = string(bytes.TrimSpace(v))
		case "Status":
			status = string(bytes.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		res.Problems = append(res.Problems, problem{Err: malformed(file, n+1, "%v", err)})
	}
	flush()
}

// rpmQueryFormat is the --queryformat given to rpm -qa: name, [epoch:]
// version-release and arch, tab separated.
const rpmQueryFormat = `%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\n`

func parseRPM(b []byte, res *result) {
	for i, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 3 || f[0] == "" {
			res.Problems = append(res.Problems, problem{Err: fmt.Errorf("%w: rpm -qa line %d: not name, version, arch", ErrMalformed, i+1)})
			continue
		}
		row := map[string]any{"name": f[0], "version": f[1], "manager": "rpm"}
		if f[2] != "" && f[2] != "(none)" {
			row["arch"] = f[2]
		}
		res.Rows = append(res.Rows, row)
	}
}

// parseApk parses /lib/apk/db/installed: records of "X:value" lines
// separated by blank lines (P name, V version, A arch).
func parseApk(b []byte, res *result) {
	const file = "lib/apk/db/installed"
	var name, ver, arch string
	start := 0
	flush := func(line int) {
		if name == "" && ver == "" && arch == "" {
			return
		}
		if name == "" {
			res.Problems = append(res.Problems, problem{Err: malformed(file, start, "record without P:")})
		} else {
			row := map[string]any{"name": name, "version": ver, "manager": "apk"}
			if arch != "" {
				row["arch"] = arch
			}
			res.Rows = append(res.Rows, row)
		}
		name, ver, arch = "", "", ""
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "" {
			flush(i + 1)
			continue
		}
		if name == "" && ver == "" && arch == "" {
			start = i + 1
		}
		if len(l) < 2 || l[1] != ':' {
			res.Problems = append(res.Problems, problem{Err: malformed(file, i+1, "not an X:value line")})
			continue
		}
		switch l[0] {
		case 'P':
			name = l[2:]
		case 'V':
			ver = l[2:]
		case 'A':
			arch = l[2:]
		}
	}
	flush(0)
}

// clip shortens untrusted text quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
