//go:build linux

package inventory

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/wire"
)

// TestLinuxCollectorThisMachine checks the Linux collector against this
// machine's own view of itself.
func TestLinuxCollectorThisMachine(t *testing.T) {
	c := NewCollector(CollectorOptions{})
	if c.Name() != "linux" {
		t.Fatalf("Name = %q", c.Name())
	}
	reps, err := Collect(bg, c, "test-pc")
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != len(wire.Categories) {
		t.Fatalf("%d reports", len(reps))
	}
	by := map[string]wire.InventoryReport{}
	for i, r := range reps {
		if r.Category != wire.Categories[i] || r.Collector != "linux" || r.PcID != "test-pc" || r.At.IsZero() {
			t.Errorf("report header %+v", r)
		}
		if h, _ := wire.HashData(r.Data); h != r.Hash {
			t.Errorf("%s: Hash %s, HashData %s", r.Category, r.Hash, h)
		}
		by[r.Category] = r
		if e := r.Data[ErrorsKey]; e != nil {
			t.Logf("%s errors (not fatal): %v", r.Category, e)
		}
	}

	// CPU: logical processors add up to nproc.
	out, err := exec.Command("nproc", "--all").Output()
	if err != nil {
		t.Fatal(err)
	}
	nproc, _ := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	var logical int64
	for _, p := range rowsOf(t, by[wire.CategoryHW].Data, ClassCPU) {
		logical += p["logical_processors"].(int64)
	}
	if logical != nproc {
		t.Errorf("logical processors %d, nproc --all %d", logical, nproc)
	}

	// Memory: MemTotal.
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var memKB uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "MemTotal:" {
			memKB, _ = strconv.ParseUint(fs[1], 10, 64)
		}
	}
	if got := rowsOf(t, by[wire.CategoryHW].Data, ClassMemory)[0]["total_bytes"]; got != memKB*1024 {
		t.Errorf("total_bytes %v, MemTotal %d kB", got, memKB)
	}

	// OS: name from /etc/os-release.
	osr, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	var name string
	for _, l := range strings.Split(string(osr), "\n") {
		if v, ok := strings.CutPrefix(l, "NAME="); ok {
			name = strings.Trim(v, `"`)
		}
	}
	if got := rowsOf(t, by[wire.CategoryOS].Data, ClassOSRelease)[0]["name"]; got != name || name == "" {
		t.Errorf("os_release name %v, /etc/os-release NAME %q", got, name)
	}
	host, _ := os.Hostname()
	if got := rowsOf(t, by[wire.CategoryOS].Data, ClassHost)[0]["hostname"]; got != host {
		t.Errorf("hostname %v, os.Hostname %q", got, host)
	}

	// Net: at least one (non-loopback) interface with an address.
	ok := false
	for _, i := range rowsOf(t, by[wire.CategoryNet].Data, ClassInterfaces) {
		if len(i["addresses"].([]string)) > 0 {
			ok = true
		}
	}
	if !ok {
		t.Errorf("no interface with an address: %v", by[wire.CategoryNet].Data)
	}

	// SW: as many dpkg packages as dpkg-query says are installed.
	if _, err := os.Stat("/var/lib/dpkg/status"); err == nil {
		if out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Abbrev}\n").Output(); err == nil {
			n := 0
			for _, l := range strings.Split(string(out), "\n") {
				if len(l) >= 2 && l[1] == 'i' {
					n++
				}
			}
			if got := len(rowsOf(t, by[wire.CategorySW].Data, ClassPackages)); got != n {
				t.Errorf("%d packages, dpkg-query says %d installed", got, n)
			}
		}
	}

	// Same machine, same hashes.
	again, err := Collect(bg, c, "test-pc")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if r.Hash != by[r.Category].Hash {
			t.Errorf("%s: hash changed between two runs", r.Category)
		}
	}
	// A fresh collector (a restart) gives the same hashes too.
	again, _ = Collect(bg, NewCollector(CollectorOptions{}), "test-pc")
	for _, r := range again {
		if r.Hash != by[r.Category].Hash {
			t.Errorf("%s: hash changed after a restart", r.Category)
		}
	}
}
