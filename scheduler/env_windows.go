package scheduler

import (
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/kanade/kanade-agent/wire"
)

var (
	modkernel32                    = windows.NewLazySystemDLL("kernel32.dll")
	procGetSystemPowerStatus       = modkernel32.NewProc("GetSystemPowerStatus")
	modiphlpapi                    = windows.NewLazySystemDLL("iphlpapi.dll")
	procGetNetworkConnectivityHint = modiphlpapi.NewProc("GetNetworkConnectivityHint")
)

// systemPowerStatus is SYSTEM_POWER_STATUS.
type systemPowerStatus struct {
	ACLineStatus        byte
	BatteryFlag         byte
	BatteryLifePercent  byte
	SystemStatusFlag    byte
	BatteryLifeTime     uint32
	BatteryFullLifeTime uint32
}

// acPower reads GetSystemPowerStatus: ACLineStatus 1 is online, 0 offline,
// 255 unknown (not known, so a requirement fails closed, as upstream).
func acPower() (online, known bool) {
	if procGetSystemPowerStatus.Find() != nil {
		return false, false
	}
	var st systemPowerStatus
	if r, _, _ := procGetSystemPowerStatus.Call(uintptr(unsafe.Pointer(&st))); r == 0 {
		return false, false
	}
	switch st.ACLineStatus {
	case 1:
		return true, true
	case 0:
		return false, true
	}
	return false, false
}

// nlNetworkConnectivityHint is NL_NETWORK_CONNECTIVITY_HINT.
type nlNetworkConnectivityHint struct {
	ConnectivityLevel    int32
	ConnectivityCost     int32
	ApproachingDataLimit byte
	OverDataLimit        byte
	Roaming              byte
}

// networkLevelInternet is NetworkConnectivityLevelHintInternetAccess.
const networkLevelInternet = 3

// networkUp reads GetNetworkConnectivityHint (Windows 10 2004 and later):
// up only with InternetAccess, as upstream (a captive portal or LAN-only is
// offline). Without the function (older Windows, Wine) it is not known.
func networkUp() (up, known bool) {
	if procGetNetworkConnectivityHint.Find() != nil {
		return false, false
	}
	var h nlNetworkConnectivityHint
	if r, _, _ := procGetNetworkConnectivityHint.Call(uintptr(unsafe.Pointer(&h))); r != 0 {
		return false, false
	}
	if h.ConnectivityLevel == 0 { // unknown
		return false, false
	}
	return h.ConnectivityLevel == networkLevelInternet, true
}

// DefaultEvents are the when.on kinds a Windows agent emits: startup (the
// agent fires it), logon, lock and unlock (the service's session change
// notifications) and network_change (the agent's network watcher).
var DefaultEvents = []string{wire.TriggerStartup, wire.TriggerLogon, wire.TriggerLock, wire.TriggerUnlock, wire.TriggerNetworkChange}
