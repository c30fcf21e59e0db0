package inventory

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

const cpuinfo2x4 = `processor	: 0
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
stepping	: 4
cpu MHz		: 2095.078
physical id	: 0
siblings	: 2
core id		: 0
cpu cores	: 2

processor	: 1
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
stepping	: 4
cpu MHz		: 2401.000
physical id	: 0
core id		: 1
cpu cores	: 2

processor	: 2
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
stepping	: 4
physical id	: 1
core id		: 0
cpu cores	: 2

processor	: 3
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
stepping	: 4
physical id	: 1
core id		: 1
cpu cores	: 2
`

const dpkgStatus = `Package: bash
Status: install ok installed
Priority: required
Architecture: amd64
Version: 5.2.15-2+b7
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.
 .
 More text.

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u7
`

func fixtureFS() fstest.MapFS {
	const (
		nvme = "sys/devices/pci0000:00/0000:00:1d.0/nvme/nvme0/nvme0n1"
		eth0 = "sys/devices/pci0000:00/0000:00:1f.6/net/eth0"
	)
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	link := func(target string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink}
	}
	return fstest.MapFS{
		"proc/cpuinfo":                   f(cpuinfo2x4),
		"proc/meminfo":                   f("MemTotal:       16318480 kB\nMemFree:         1234567 kB\n"),
		"proc/stat":                      f("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
		"proc/sys/kernel/random/boot_id": f("0f1e2d3c-aaaa-bbbb-cccc-111122223333\n"),
		"proc/sys/kernel/ostype":         f("Linux\n"),
		"proc/sys/kernel/osrelease":      f("6.1.0-18-amd64\n"),
		"proc/sys/kernel/version":        f("#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)\n"),
		"proc/sys/kernel/hostname":       f("web-01\n"),
		"proc/sys/kernel/domainname":     f("(none)\n"),
		"etc/machine-id":                 f("3d1219c7c4c5404aaa1f6d2a48adfda4\n"),
		"etc/os-release":                 f("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n# comment\n"),
		"etc/resolv.conf":                f("# generated\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch corp.example example\n"),
		"sys/class/dmi/id/sys_vendor":    f("LENOVO\n"),
		"sys/class/dmi/id/product_name":  f("21HD0001JP\n"),
		"sys/class/dmi/id/bios_version":  f("N3VET42W (1.22 )\n"),
		"sys/block/nvme0n1":              link("../devices/pci0000:00/0000:00:1d.0/nvme/nvme0/nvme0n1"),
		nvme + "/size":                   f("1000215216\n"),
		nvme + "/removable":              f("0\n"),
		nvme + "/queue/rotational":       f("0\n"),
		nvme + "/device/model":           f("SAMSUNG MZVL21T0HCLR-00BL7              \n"),
		nvme + "/device/serial":          f("S64PNX0T123456\n"),
		"sys/block/loop0":                link("../devices/virtual/block/loop0"),
		"sys/block/loop0/size":           f("0\n"),
		"proc/filesystems":               f("nodev\tsysfs\nnodev\tproc\nnodev\ttmpfs\nnodev\tnfs4\n\text4\n\tvfat\n\tsquashfs\n"),
		"proc/self/mountinfo": f(`22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 259:2 / / rw,relatime - ext4 /dev/nvme0n1p2 rw
28 27 259:1 / /boot/efi rw,relatime - vfat /dev/nvme0n1p1 rw
29 27 7:0 / /snap/core/1 ro - squashfs /dev/loop0 ro
30 27 0:50 / /mnt/my\040share rw - nfs4 fs01:/export rw
31 27 0:23 / /run rw - tmpfs tmpfs rw
`),
		"proc/net/if_inet6":  f("20010db8000000000000000000000abc 02 40 00 80   eth0\n20010db80000000011223344aabbccdd 02 40 00 01   eth0\nfe800000000000000000000000000001 02 40 20 80   eth0\n"),
		"proc/net/route":     f("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t0102000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\neth0\t0002000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"),
		"sys/class/net/eth0": link("../../devices/pci0000:00/0000:00:1f.6/net/eth0"),
		eth0 + "/type":       f("1\n"),
		eth0 + "/device":     link("../../../0000:00:1f.6"),
		"sys/devices/pci0000:00/0000:00:1f.6/driver": link("../../../bus/pci/drivers/e1000e"),
		"sys/class/net/veth1":                        link("../../devices/virtual/net/veth1"),
		"sys/class/net/docker0":                      link("../../devices/virtual/net/docker0"),
		"var/lib/dpkg/status":                        f(dpkgStatus),
	}
}

func fixtureIfaces() ([]netIface, error) {
	mac, _ := net.ParseMAC("3c:21:9c:12:34:56")
	return []netIface{
		{Name: "lo", MTU: 65536, Flags: net.FlagUp | net.FlagLoopback | net.FlagRunning, Addrs: []string{"127.0.0.1/8", "::1/128"}},
		{Name: "eth0", MAC: mac.String(), MTU: 1500, Flags: net.FlagUp | net.FlagBroadcast | net.FlagMulticast | net.FlagRunning,
			Addrs: []string{"10.0.2.15/24", "2001:db8::abc/64", "2001:db8::1122:3344:aabb:ccdd/64", "fe80::1/64"}},
		{Name: "veth1", MAC: "aa:bb:cc:00:00:01", MTU: 1500, Flags: net.FlagUp | net.FlagBroadcast, Addrs: []string{"fe80::a8bb:ccff:fe00:1/64"}},
		{Name: "docker0", MAC: "02:42:00:00:00:01", MTU: 1500, Flags: net.FlagUp | net.FlagBroadcast | net.FlagMulticast, Addrs: []string{"172.17.0.1/16"}},
	}, nil
}

func fixtureLinux(fsys fs.FS) *linuxCollector {
	return newLinuxCollector(linuxDeps{
		fsys:       fsys,
		interfaces: fixtureIfaces,
		statfs: func(mp string) (uint64, error) {
			if mp == "/mnt/my share" {
				return 0, errors.New("stale file handle")
			}
			return uint64(len(mp)) << 30, nil
		},
		machine: func() (string, error) { return "x86_64", nil },
	}, 5*time.Second)
}

func rowsOf(t *testing.T, data map[string]any, class string) []map[string]any {
	t.Helper()
	rows, ok := data[class].([]map[string]any)
	if !ok {
		t.Fatalf("%s missing; errors %v", class, data[ErrorsKey])
	}
	return rows
}

func TestLinuxFixture(t *testing.T) {
	c := fixtureLinux(fixtureFS())
	hw, err := c.CollectCategory(bg, wire.CategoryHW)
	if err != nil {
		t.Fatal(err)
	}
	cpus := rowsOf(t, hw, ClassCPU)
	if len(cpus) != 2 {
		t.Fatalf("cpu = %v", cpus)
	}
	for i, p := range cpus {
		if p["cores"] != int64(2) || p["logical_processors"] != int64(2) || p["socket"] != int64(i) || p["model"] != int64(85) {
			t.Errorf("cpu %d = %v", i, p)
		}
		if _, ok := p["cpu_mhz"]; ok {
			t.Error("volatile cpu MHz reported")
		}
	}
	if m := rowsOf(t, hw, ClassMemory); m[0]["total_bytes"] != uint64(16318480*1024) {
		t.Errorf("memory = %v", m)
	}
	if d := rowsOf(t, hw, ClassDMI); len(d) != 1 || d[0]["sys_vendor"] != "LENOVO" || d[0]["bios_version"] != "N3VET42W (1.22 )" {
		t.Errorf("dmi = %v", d)
	}
	blk := rowsOf(t, hw, ClassBlock)
	if len(blk) != 1 || blk[0]["name"] != "nvme0n1" || blk[0]["size_bytes"] != uint64(1000215216*512) || blk[0]["model"] != "SAMSUNG MZVL21T0HCLR-00BL7" || blk[0]["rotational"] != false {
		t.Errorf("block = %v", blk)
	}
	fsr := rowsOf(t, hw, ClassFilesystems)
	mps := []string{}
	for _, r := range fsr {
		mps = append(mps, r["mount_point"].(string))
	}
	slices.Sort(mps)
	if strings.Join(mps, ",") != "/,/boot/efi,/mnt/my share" {
		t.Errorf("filesystems = %v", fsr)
	}
	if !errorSet(hw)["filesystems|size_bytes|inventory: statfs /mnt/my share: stale file handle"] {
		t.Errorf("errors = %v", hw[ErrorsKey])
	}

	osd, _ := c.CollectCategory(bg, wire.CategoryOS)
	if r := rowsOf(t, osd, ClassOSRelease)[0]; r["name"] != "Debian GNU/Linux" || r["version_id"] != "12" || r["id"] != "debian" {
		t.Errorf("os_release = %v", r)
	}
	if r := rowsOf(t, osd, ClassKernel)[0]; r["release"] != "6.1.0-18-amd64" || r["machine"] != "x86_64" || r["name"] != "Linux" {
		t.Errorf("kernel = %v", r)
	}
	if r := rowsOf(t, osd, ClassHost)[0]; r["hostname"] != "web-01" || r["machine_id"] == nil || r["domain_name"] != nil {
		t.Errorf("host = %v", r)
	}
	if r := rowsOf(t, osd, ClassBoot)[0]; r["booted_at"] != "2023-11-14T22:13:20Z" || r["boot_id"] != "0f1e2d3c-aaaa-bbbb-cccc-111122223333" {
		t.Errorf("boot = %v", r)
	}
	if e := osd[ErrorsKey]; e != nil {
		t.Errorf("os errors: %v", e)
	}

	nd, _ := c.CollectCategory(bg, wire.CategoryNet)
	ifs := rowsOf(t, nd, ClassInterfaces)
	byName := map[string]map[string]any{}
	for _, r := range ifs {
		byName[r["name"].(string)] = r
	}
	if len(ifs) != 2 || byName["docker0"] == nil || byName["eth0"] == nil {
		t.Fatalf("interfaces (want docker0 and eth0 only) = %v", ifs)
	}
	eth := byName["eth0"]
	if got := strings.Join(eth["addresses"].([]string), " "); got != "10.0.2.15/24 2001:db8::abc/64 fe80::1/64" {
		t.Errorf("eth0 addresses (temporary IPv6 left out) = %q", got)
	}
	if eth["driver"] != "e1000e" || eth["type"] != int64(1) || eth["mac"] != "3c:21:9c:12:34:56" || eth["mtu"] != int64(1500) {
		t.Errorf("eth0 = %v", eth)
	}
	if g, _ := eth["gateways"].([]string); len(g) != 1 || g[0] != "10.0.2.1" {
		t.Errorf("eth0 gateways = %v", eth["gateways"])
	}
	if f := strings.Join(eth["flags"].([]string), ","); f != "up,broadcast,multicast" {
		t.Errorf("flags = %s", f)
	}
	if d := rowsOf(t, nd, ClassDNS)[0]; len(d["nameservers"].([]string)) != 2 || d["search"].([]string)[0] != "corp.example" {
		t.Errorf("dns = %v", d)
	}

	sw, _ := c.CollectCategory(bg, wire.CategorySW)
	pk := rowsOf(t, sw, ClassPackages)
	if len(pk) != 2 || pk[0]["name"] != "bash" || pk[0]["version"] != "5.2.15-2+b7" || pk[0]["arch"] != "amd64" || pk[1]["name"] != "libc6" {
		t.Errorf("packages = %v", pk)
	}
	if e := sw[ErrorsKey]; e != nil {
		t.Errorf("sw errors: %v", e)
	}
}

func TestLinuxGarbledInputs(t *testing.T) {
	fsys := fixtureFS()
	set := func(name, s string) { fsys[name] = &fstest.MapFile{Data: []byte(s)} }
	set("proc/cpuinfo", "processor : 0\nmodel name : X\ncpu cores : many\n\x00\x01garbage without colon\n\nnot a block\n")
	set("proc/meminfo", "MemTotal: lots kB\n")
	set("etc/os-release", "NAME=\"Debian\nID=debian\n!!!\n")
	set("var/lib/dpkg/status", dpkgStatus+"\nGarbage line\nStatus: install ok installed\nVersion: 1\n\nPackage: half\nStatus: broken\n")
	set("proc/self/mountinfo", "this is not mountinfo\n27 1 259:2 / / rw,relatime - ext4 /dev/nvme0n1p2 rw\n")
	set("proc/net/if_inet6", "zz\n")
	set("proc/stat", "btime yesterday\n")
	set("sys/devices/pci0000:00/0000:00:1d.0/nvme/nvme0/nvme0n1/size", "huge\n")
	c := fixtureLinux(fsys)
	all := map[string]bool{}
	for _, cat := range wire.Categories {
		d, err := c.CollectCategory(bg, cat)
		if err != nil {
			t.Fatalf("%s: %v", cat, err)
		}
		for k := range errorSet(d) {
			all[k] = true
		}
		if _, err := wire.HashData(d); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{
		`cpu|cores|inventory: malformed provider output: /proc/cpuinfo line 3: cpu cores: not a number: "many"`,
		`cpu||inventory: malformed provider output: /proc/cpuinfo line 4: not a key: value line`,
		`cpu||inventory: malformed provider output: /proc/cpuinfo line 6: not a key: value line`,
		`memory||inventory: malformed provider output: /proc/meminfo line 1: MemTotal: not a number: "lots"`,
		`os_release|name|inventory: malformed provider output: /etc/os-release line 1: unterminated quote`,
		`os_release||inventory: malformed provider output: /etc/os-release line 3: not a KEY=value line`,
		`packages||inventory: malformed provider output: /var/lib/dpkg/status line 21: not a Field: value line`,
		`packages||inventory: malformed provider output: /var/lib/dpkg/status line 21: record without Package`,
		`packages||inventory: malformed provider output: /var/lib/dpkg/status line 25: package half: bad Status "broken"`,
		`filesystems||inventory: malformed provider output: /proc/self/mountinfo line 1: not a mountinfo line`,
		`interfaces|addresses|inventory: malformed provider output: /proc/net/if_inet6 line 1: not an if_inet6 line`,
		`boot|booted_at|inventory: malformed provider output: /proc/stat line 1: btime: not a positive number`,
		`block|size_bytes|inventory: malformed provider output: /sys/block/nvme0n1/size: not a number: "huge"`,
	} {
		if !all[want] {
			t.Errorf("missing error %s", want)
		}
	}
	if t.Failed() {
		for k := range all {
			t.Log(k)
		}
	}
	// The parsable parts survive.
	sw, _ := c.CollectCategory(bg, wire.CategorySW)
	if pk := rowsOf(t, sw, ClassPackages); len(pk) != 2 {
		t.Errorf("packages = %v", pk)
	}
}

func TestLinuxMissingAndUnreadable(t *testing.T) {
	c := fixtureLinux(fstest.MapFS{})
	for _, cat := range wire.Categories {
		d, err := c.CollectCategory(bg, cat)
		if err != nil {
			t.Fatal(err)
		}
		if cat == wire.CategoryHW {
			es := errorSet(d)
			if !es["cpu||inventory: read /proc/cpuinfo: file does not exist"] {
				t.Errorf("hw errors: %v", es)
			}
		}
		if cat == wire.CategorySW && !errorSet(d)["packages||inventory: no package database found (dpkg, rpm, apk)"] {
			t.Errorf("sw: %v", d)
		}
	}
}

// TestLinuxRandomGarbage feeds random bytes as every file: no panic, every
// category still yields hashable data.
func TestLinuxRandomGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := fixtureFS()
	for i := 0; i < 200; i++ {
		fsys := fstest.MapFS{}
		for name, f := range base {
			if f.Mode&fs.ModeSymlink != 0 {
				fsys[name] = f
				continue
			}
			b := make([]byte, r.IntN(300))
			for j := range b {
				switch r.IntN(4) {
				case 0:
					b[j] = byte(r.IntN(256))
				case 1:
					b[j] = "\n:\t =\"'\\"[r.IntN(8)]
				default:
					b[j] = byte('a' + r.IntN(26))
				}
			}
			if r.IntN(3) == 0 { // a mutilated copy of the real content
				b = append([]byte(nil), f.Data[:r.IntN(len(f.Data)+1)]...)
				if len(b) > 0 {
					b[r.IntN(len(b))] = byte(r.IntN(256))
				}
			}
			fsys[name] = &fstest.MapFile{Data: b}
		}
		c := fixtureLinux(fsys)
		for _, cat := range wire.Categories {
			d, err := c.CollectCategory(context.Background(), cat)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := wire.HashData(d); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestParseRPMAndApk(t *testing.T) {
	var res result
	parseRPM([]byte("bash\t5.2.26-3.fc40\tx86_64\ngpg-pubkey\td4082792-5b32db75\t(none)\nbroken line\n"), &res)
	if len(res.Rows) != 2 || res.Rows[0]["manager"] != "rpm" || res.Rows[1]["arch"] != nil || len(res.Problems) != 1 {
		t.Errorf("rpm: %v %v", res.Rows, res.Problems)
	}
	res = result{}
	parseApk([]byte("C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r15\nA:x86_64\n\nV:orphan\n\ngarbage\n"), &res)
	if len(res.Rows) != 2 || res.Rows[0]["name"] != "musl" || res.Rows[1]["version"] != "1.36.1-r15" || len(res.Problems) != 2 {
		t.Errorf("apk: %v %v", res.Rows, res.Problems)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/x\011`: "/x\t", `/trailing\04`: `/trailing\04`, `/plain`: "/plain", `\134`: `\`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
