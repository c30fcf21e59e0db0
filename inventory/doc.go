// Package inventory collects the machine's inventory and publishes it as
// wire.InventoryReport messages, one per category (hw, os, sw, net).
//
// # Collectors
//
// NewCollector returns the collector of the running OS. Both produce the
// same shape, so a backend needs no special case: Data maps a class name to
// a list of objects, plus ErrorsKey ("_errors") listing what failed.
//
// On Windows ("wmi"), the classes are WMI classes with their WMI property
// names (an explicit list per class, kept in wmi_decode.go): hw Win32_ComputerSystem, Win32_BIOS,
// Win32_Processor, Win32_PhysicalMemory, Win32_DiskDrive, Win32_LogicalDisk,
// Win32_BaseBoard, Win32_VideoController; os Win32_OperatingSystem,
// Win32_QuickFixEngineering; net Win32_NetworkAdapterConfiguration (WHERE
// IPEnabled = TRUE); sw "Uninstall", the installed programs of the
// Uninstall registry keys of HKLM in both views and of each loaded user
// hive. WMI is read through the scripting objects (SWbemLocator,
// ExecQuery, Properties_.Item(name).Value), each class on its own
// long-lived OS thread with COM initialized there once. Values are converted as follows:
// strings stay strings; integers become int64 (uint64 above MaxInt64), and
// WMI's 64-bit integers, which arrive as strings, are parsed; booleans stay
// booleans; CIM_DATETIME values become RFC 3339 strings in UTC, to the
// second; string arrays become []string; a null is left out of its object.
// A property this Windows (or Wine) lacks is reported in ErrorsKey as "not
// provided"; a value of an unexpected type is left out and reported.
//
// On Linux ("linux"), class names and fields are snake_case, sizes are in
// bytes with a _bytes suffix, and times are RFC 3339 UTC strings: hw cpu,
// memory, dmi, block, filesystems; os os_release, kernel, host, boot; net
// interfaces, dns; sw packages (dpkg status file, rpm -qa, apk database).
// See the Class constants for each class's fields.
//
// Values that change without the inventory changing (free memory and disk
// space, clock speeds, uptime, DHCP lease times, link state, temporary IPv6
// addresses) are never collected, so the hash only changes when the
// inventory does.
//
// # Timeouts
//
// Every class runs under its own timeout (CollectorOptions.ClassTimeout).
// A class that does not finish in time — a hung WMI provider — is reported
// in ErrorsKey and abandoned: its goroutine is left to finish on its own,
// and until it does that class is reported as still running rather than
// started again, so at most one goroutine per class is ever abandoned. The
// other classes are unaffected and the report is still sent.
//
// # Hash
//
// Hash is wire.HashData(Data): the SHA-256 of the canonical JSON. Rows are
// sorted by their canonical JSON, so the order a provider returns them in
// does not matter, and error messages are deterministic (no durations
// measured, no addresses), so the same machine gives the same hash.
//
// # Reporter
//
// Reporter publishes on a schedule through Options.Enqueue (the agent's
// durable outbox): every category at start (after a small random
// StartSplay), a full run of every category every Interval (6 h by
// default, plus a random Splay; SetInterval applies inventory_interval
// live), and between full runs a change check every CheckInterval (15 min)
// that sends only the categories whose hash differs from the last report
// enqueued or acknowledged. The agent calls Acked from the outbox's on-ack
// hook; acknowledged hashes are kept in Options.StateFile.
package inventory
