package scheduler

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	"github.com/kanade/kanade-agent/wire"
)

// powerSupplyDir is where Linux lists the power supplies (a variable for tests).
var powerSupplyDir = "/sys/class/power_supply"

// acPower reads /sys/class/power_supply: on AC when a Mains (or USB)
// supply is online; a machine with no supply at all (a desktop, a server,
// a VM) is on AC; one with only batteries is on AC unless a battery is
// Discharging.
func acPower() (online, known bool) {
	ents, err := os.ReadDir(powerSupplyDir)
	if err != nil {
		return false, false
	}
	read := func(dev, f string) string {
		b, _ := os.ReadFile(filepath.Join(powerSupplyDir, dev, f))
		return strings.TrimSpace(string(b))
	}
	mains, battery, discharging := false, false, false
	for _, e := range ents {
		switch read(e.Name(), "type") {
		case "Mains", "USB", "USB_C", "USB_PD":
			mains = true
			if read(e.Name(), "online") == "1" {
				return true, true
			}
		case "Battery":
			battery = true
			if read(e.Name(), "status") == "Discharging" {
				discharging = true
			}
		}
	}
	switch {
	case mains:
		return false, true // a mains supply exists and none is online
	case battery:
		return !discharging, true
	}
	return true, true
}

// routeFiles are the kernel's routing tables (variables for tests).
var routeFiles = [2]string{"/proc/net/route", "/proc/net/ipv6_route"}

// networkUp reports whether the host has a default route (IPv4 or IPv6),
// the closest Linux has to "connected" without probing the internet.
func networkUp() (up, known bool) {
	read := 0
	for i, path := range routeFiles {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		read++
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if i == 0 && len(fs) >= 4 && fs[1] == "00000000" && fs[0] != "lo" {
				if flags := fs[3]; len(flags) > 0 && (flags[len(flags)-1]&1) == 1 { // RTF_UP
					f.Close()
					return true, true
				}
			}
			if i == 1 && len(fs) >= 10 && fs[0] == strings.Repeat("0", 32) && fs[1] == "00" && fs[9] != "lo" {
				f.Close()
				return true, true
			}
		}
		f.Close()
	}
	return false, read > 0
}

// DefaultEvents are the when.on kinds a Linux agent emits: startup (the
// agent fires it) and network_change (the agent's network watcher). Linux
// has no logon, lock or unlock source here; a host program that calls
// Trigger with one makes it emitted from then on.
var DefaultEvents = []string{wire.TriggerStartup, wire.TriggerNetworkChange}
