package scheduler

import (
	"os"
	"path/filepath"
	"testing"
)

func TestACPowerLinux(t *testing.T) {
	old := powerSupplyDir
	t.Cleanup(func() { powerSupplyDir = old })
	mk := func(supplies map[string][2]string) string { // name -> type, online/status
		dir := t.TempDir()
		for name, v := range supplies {
			d := filepath.Join(dir, name)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, "type"), []byte(v[0]+"\n"), 0o644)
			f := "online"
			if v[0] == "Battery" {
				f = "status"
			}
			os.WriteFile(filepath.Join(d, f), []byte(v[1]+"\n"), 0o644)
		}
		return dir
	}
	for _, tc := range []struct {
		name          string
		supplies      map[string][2]string
		online, known bool
	}{
		{"desktop", nil, true, true},
		{"laptop on AC", map[string][2]string{"AC": {"Mains", "1"}, "BAT0": {"Battery", "Charging"}}, true, true},
		{"laptop on battery", map[string][2]string{"AC": {"Mains", "0"}, "BAT0": {"Battery", "Discharging"}}, false, true},
		{"battery only, discharging", map[string][2]string{"BAT0": {"Battery", "Discharging"}}, false, true},
		{"battery only, full", map[string][2]string{"BAT0": {"Battery", "Full"}}, true, true},
	} {
		powerSupplyDir = mk(tc.supplies)
		if on, known := acPower(); on != tc.online || known != tc.known {
			t.Errorf("%s: %v %v", tc.name, on, known)
		}
	}
	powerSupplyDir = filepath.Join(t.TempDir(), "missing")
	if _, known := acPower(); known {
		t.Error("missing /sys/class/power_supply known")
	}
}

func TestNetworkUpLinux(t *testing.T) {
	old := routeFiles
	t.Cleanup(func() { routeFiles = old })
	dir := t.TempDir()
	v4 := filepath.Join(dir, "route")
	v6 := filepath.Join(dir, "ipv6_route")
	hdr := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	os.WriteFile(v4, []byte(hdr+"eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"), 0o644)
	routeFiles = [2]string{v4, filepath.Join(dir, "none")}
	if up, known := networkUp(); up || !known {
		t.Errorf("no default route: %v %v", up, known)
	}
	os.WriteFile(v4, []byte(hdr+"eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"), 0o644)
	if up, known := networkUp(); !up || !known {
		t.Errorf("default route: %v %v", up, known)
	}
	os.WriteFile(v4, []byte(hdr), 0o644)
	os.WriteFile(v6, []byte("00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 wlan0\n"), 0o644)
	routeFiles = [2]string{v4, v6}
	if up, _ := networkUp(); !up {
		t.Error("IPv6 default route not seen")
	}
	routeFiles = [2]string{filepath.Join(dir, "x"), filepath.Join(dir, "y")}
	if _, known := networkUp(); known {
		t.Error("no route files known")
	}
}
