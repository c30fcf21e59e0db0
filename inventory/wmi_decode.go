package inventory

// Decoding of WMI (and registry) values into report data. This file has no
// Windows dependency: the Windows side turns each VARIANT or registry value
// into a "raw" Go value (nil, string, int64, uint64, float64, bool,
// time.Time, []any, rawUnsupported) and everything after that — the
// per-property kinds, CIM_DATETIME, error reporting — is here, so it is
// tested on every machine with recorded results.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// kind is the type a property is reported as.
type kind int

const (
	kString   kind = iota // string
	kInt                  // int64 (uint64 above MaxInt64); WMI's 64-bit integers arrive as strings and are parsed
	kBool                 // bool
	kDatetime             // CIM_DATETIME or VT_DATE → RFC 3339 string in UTC, whole seconds
	kStrings              // array of strings → []string
)

func (k kind) String() string {
	switch k {
	case kString:
		return "string"
	case kInt:
		return "integer"
	case kBool:
		return "boolean"
	case kDatetime:
		return "datetime"
	case kStrings:
		return "string array"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// rawUnsupported stands for a value of a type the decoder does not handle
// (a VARIANT type, a registry value type).
type rawUnsupported struct{ Desc string }

// prop is one reported property.
type prop struct {
	Name string
	Kind kind
}

// wmiClass is one WMI class of the Windows collector.
type wmiClass struct {
	Category string
	Class    string
	Where    string // WQL condition, without WHERE
	Props    []prop
}

// query returns the WQL asking for exactly the properties of c.
func (c wmiClass) query() string {
	names := make([]string, len(c.Props))
	for i, p := range c.Props {
		names[i] = p.Name
	}
	q := "SELECT " + strings.Join(names, ", ") + " FROM " + c.Class
	if c.Where != "" {
		q += " WHERE " + c.Where
	}
	return q
}

// queryAll is the fallback WQL (SELECT *), used when the column list is
// refused because this Windows (or Wine) lacks one of the properties.
func (c wmiClass) queryAll() string {
	q := "SELECT * FROM " + c.Class
	if c.Where != "" {
		q += " WHERE " + c.Where
	}
	return q
}

func p(name string, k kind) prop { return prop{name, k} }

// wmiClasses are the classes and properties reported by the Windows
// collector. Volatile properties (free space or memory, clock speeds, load,
// current resolution, uptime, last boot, DHCP lease times) are deliberately
// absent so the hash only changes when the inventory does.
var wmiClasses = []wmiClass{
	{Category: wire.CategoryHW, Class: "Win32_ComputerSystem", Props: []prop{
		p("Name", kString), p("Domain", kString), p("Workgroup", kString), p("PartOfDomain", kBool), p("DomainRole", kInt),
		p("Manufacturer", kString), p("Model", kString), p("SystemFamily", kString), p("SystemSKUNumber", kString),
		p("SystemType", kString), p("PCSystemType", kInt),
		p("NumberOfProcessors", kInt), p("NumberOfLogicalProcessors", kInt), p("TotalPhysicalMemory", kInt),
	}},
	{Category: wire.CategoryHW, Class: "Win32_BIOS", Props: []prop{
		p("Manufacturer", kString), p("Name", kString), p("Version", kString), p("SMBIOSBIOSVersion", kString),
		p("SMBIOSMajorVersion", kInt), p("SMBIOSMinorVersion", kInt), p("SerialNumber", kString), p("ReleaseDate", kDatetime),
	}},
	{Category: wire.CategoryHW, Class: "Win32_Processor", Props: []prop{
		p("DeviceID", kString), p("Name", kString), p("Manufacturer", kString), p("Description", kString),
		p("Architecture", kInt), p("AddressWidth", kInt), p("NumberOfCores", kInt), p("NumberOfLogicalProcessors", kInt),
		p("MaxClockSpeed", kInt), p("L2CacheSize", kInt), p("L3CacheSize", kInt), p("ProcessorId", kString),
		p("SocketDesignation", kString),
	}},
	{Category: wire.CategoryHW, Class: "Win32_PhysicalMemory", Props: []prop{
		p("BankLabel", kString), p("DeviceLocator", kString), p("Capacity", kInt), p("Speed", kInt),
		p("Manufacturer", kString), p("PartNumber", kString), p("SerialNumber", kString),
		p("FormFactor", kInt), p("MemoryType", kInt),
	}},
	{Category: wire.CategoryHW, Class: "Win32_DiskDrive", Props: []prop{
		p("DeviceID", kString), p("Index", kInt), p("Model", kString), p("Manufacturer", kString),
		p("SerialNumber", kString), p("FirmwareRevision", kString), p("InterfaceType", kString),
		p("MediaType", kString), p("Size", kInt), p("Partitions", kInt), p("PNPDeviceID", kString),
	}},
	{Category: wire.CategoryHW, Class: "Win32_LogicalDisk", Props: []prop{
		p("DeviceID", kString), p("DriveType", kInt), p("FileSystem", kString), p("Size", kInt),
		p("VolumeName", kString), p("VolumeSerialNumber", kString), p("ProviderName", kString),
	}},
	{Category: wire.CategoryHW, Class: "Win32_BaseBoard", Props: []prop{
		p("Manufacturer", kString), p("Product", kString), p("Version", kString), p("SerialNumber", kString),
	}},
	{Category: wire.CategoryHW, Class: "Win32_VideoController", Props: []prop{
		p("Name", kString), p("AdapterCompatibility", kString), p("VideoProcessor", kString),
		p("AdapterRAM", kInt), p("DriverVersion", kString), p("DriverDate", kDatetime), p("PNPDeviceID", kString),
	}},
	{Category: wire.CategoryOS, Class: "Win32_OperatingSystem", Props: []prop{
		p("Caption", kString), p("Version", kString), p("BuildNumber", kString), p("OSArchitecture", kString),
		p("CSDVersion", kString), p("ServicePackMajorVersion", kInt), p("ProductType", kInt), p("OSType", kInt),
		p("SerialNumber", kString), p("InstallDate", kDatetime), p("Locale", kString), p("OSLanguage", kInt),
		p("CountryCode", kString), p("MUILanguages", kStrings), p("SystemDrive", kString), p("WindowsDirectory", kString),
		p("RegisteredUser", kString), p("Organization", kString), p("CSName", kString),
	}},
	{Category: wire.CategoryOS, Class: "Win32_QuickFixEngineering", Props: []prop{
		// InstalledOn is a plain string in this class (e.g. "3/15/2024"), not a CIM_DATETIME.
		p("HotFixID", kString), p("Description", kString), p("InstalledOn", kString), p("InstalledBy", kString),
	}},
	{Category: wire.CategoryNet, Class: "Win32_NetworkAdapterConfiguration", Where: "IPEnabled = TRUE", Props: []prop{
		p("Index", kInt), p("InterfaceIndex", kInt), p("Description", kString), p("SettingID", kString),
		p("MACAddress", kString), p("IPAddress", kStrings), p("IPSubnet", kStrings), p("DefaultIPGateway", kStrings),
		p("DNSServerSearchOrder", kStrings), p("DNSDomain", kString), p("DNSHostName", kString),
		p("DHCPEnabled", kBool), p("DHCPServer", kString),
	}},
}

// uninstallClass is the key of the installed-programs list in the Windows
// sw category.
const uninstallClass = "Uninstall"

// uninstallProps are the values read from each Uninstall subkey.
var uninstallProps = []prop{
	p("DisplayName", kString), p("DisplayVersion", kString), p("Publisher", kString), p("InstallDate", kString),
	p("InstallLocation", kString), p("UninstallString", kString), p("EstimatedSize", kInt),
	p("SystemComponent", kInt), p("WindowsInstaller", kInt), p("ParentKeyName", kString), p("ReleaseType", kString),
}

// uninstallKeys are the fields readUninstall adds to each program: the
// subkey name, the hive (HKLM or HKU\<SID>) and the registry view ("64",
// "32"; absent for per-user keys, which are not redirected).
var uninstallKeys = []string{"KeyName", "Hive", "View"}

// decodeUninstall decodes the raw values of Uninstall subkeys (uninstallProps
// plus uninstallKeys). A subkey without a DisplayName is skipped, as
// Programs and Features skips it; a value a subkey lacks is normal and not
// reported.
func decodeUninstall(raws []map[string]any) result {
	var keep []map[string]any
	for _, raw := range raws {
		if dn, _ := raw["DisplayName"].(string); strings.TrimSpace(dn) == "" {
			continue
		}
		r := make(map[string]any, len(uninstallProps))
		for _, p := range uninstallProps {
			r[p.Name] = raw[p.Name] // absent → nil: left out, not "not provided"
		}
		keep = append(keep, r)
	}
	res := decodeRows(uninstallProps, keep)
	i := 0
	for _, raw := range raws {
		if dn, _ := raw["DisplayName"].(string); strings.TrimSpace(dn) == "" {
			continue
		}
		for _, k := range uninstallKeys {
			if s, ok := raw[k].(string); ok && s != "" {
				res.Rows[i][k] = s
			}
		}
		i++
	}
	return res
}

// wmiClassesOf returns the WMI classes of a category.
func wmiClassesOf(category string) []wmiClass {
	var out []wmiClass
	for _, c := range wmiClasses {
		if c.Category == category {
			out = append(out, c)
		}
	}
	return out
}

// errNotProvided marks a property the provider does not have (a class that
// lacks it on this Windows version, or under Wine).
var errNotProvided = errors.New("not provided")

// decodeRows turns raw rows (property name → raw value; a property absent
// from the map was not provided) into report rows. A value that cannot be
// decoded is left out of its row and reported as a problem; properties that
// were not provided are reported once for the class.
func decodeRows(props []prop, raws []map[string]any) result {
	res := result{Rows: make([]map[string]any, 0, len(raws))}
	missing := map[string]bool{}
	seen := map[string]bool{}
	for _, raw := range raws {
		row := make(map[string]any, len(props))
		for _, p := range props {
			rv, ok := raw[p.Name]
			if !ok {
				missing[p.Name] = true
				continue
			}
			v, err := decodeValue(p.Kind, rv)
			if err != nil {
				msg := p.Name + err.Error()
				if !seen[msg] { // the same problem in many rows is reported once
					seen[msg] = true
					res.Problems = append(res.Problems, problem{Property: p.Name, Err: err})
				}
				continue
			}
			if v != nil {
				row[p.Name] = v
			}
		}
		res.Rows = append(res.Rows, row)
	}
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			res.Problems = append(res.Problems, problem{Property: n, Err: fmt.Errorf("inventory: property %w", errNotProvided)})
		}
	}
	return res
}

// decodeValue converts a raw value to kind k. A nil raw value (VT_NULL,
// VT_EMPTY) gives nil: the property is left out of the row.
func decodeValue(k kind, raw any) (any, error) {
	if raw == nil {
		return nil, nil
	}
	if u, ok := raw.(rawUnsupported); ok {
		return nil, fmt.Errorf("%w: unsupported value type %s", ErrMalformed, u.Desc)
	}
	bad := func() (any, error) {
		return nil, fmt.Errorf("%w: %s where %s expected", ErrMalformed, rawTypeName(raw), k)
	}
	switch k {
	case kString:
		if s, ok := raw.(string); ok {
			return s, nil
		}
		return bad()
	case kInt:
		switch v := raw.(type) {
		case int64:
			return v, nil
		case uint64:
			if v <= math.MaxInt64 {
				return int64(v), nil
			}
			return v, nil
		case string:
			s := strings.TrimSpace(v)
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, nil
			}
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				return n, nil
			}
			return nil, fmt.Errorf("%w: string %q where integer expected", ErrMalformed, clip(v))
		}
		return bad()
	case kBool:
		if b, ok := raw.(bool); ok {
			return b, nil
		}
		return bad()
	case kDatetime:
		switch v := raw.(type) {
		case string:
			t, err := parseCIMDatetime(v)
			if err != nil {
				return nil, err
			}
			return t.UTC().Format(time.RFC3339), nil
		case time.Time:
			return v.UTC().Truncate(time.Second).Format(time.RFC3339), nil
		}
		return bad()
	case kStrings:
		arr, ok := raw.([]any)
		if !ok {
			return bad()
		}
		out := make([]string, 0, len(arr))
		for _, e := range arr {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%w: array of %s where string array expected", ErrMalformed, rawTypeName(e))
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("inventory: unknown kind %d", k)
}

func rawTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case int64, uint64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "date"
	case []any:
		return "array"
	case rawUnsupported:
		return "unsupported"
	}
	return fmt.Sprintf("%T", v)
}

// parseCIMDatetime parses a CIM_DATETIME, "yyyymmddHHMMSS.mmmmmmsUUU"
// where s is + or - and UUU the offset from UTC in minutes. Asterisks
// (fields left unspecified) are accepted in the fraction and the offset,
// read as zero. Intervals ("ddddddddHHMMSS.mmmmmm:000") and wildcards in the
// date are malformed.
func parseCIMDatetime(s string) (time.Time, error) {
	bad := func(why string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("%w: CIM_DATETIME %q: %s", ErrMalformed, clip(s), why)
	}
	if len(s) != 25 || s[14] != '.' {
		return bad("not yyyymmddHHMMSS.mmmmmmsUUU")
	}
	if s[21] == ':' {
		return bad("an interval, not a date")
	}
	if s[21] != '+' && s[21] != '-' {
		return bad("no UTC offset sign")
	}
	num := func(from, to int, star bool) (int, bool) {
		f := s[from:to]
		if star && strings.Trim(f, "*") == "" {
			return 0, true
		}
		n, err := strconv.Atoi(f)
		return n, err == nil && n >= 0
	}
	y, ok1 := num(0, 4, false)
	mo, ok2 := num(4, 6, false)
	d, ok3 := num(6, 8, false)
	h, ok4 := num(8, 10, false)
	mi, ok5 := num(10, 12, false)
	se, ok6 := num(12, 14, false)
	us, ok7 := num(15, 21, true)
	off, ok8 := num(22, 25, true)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8) {
		return bad("non-numeric field")
	}
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 {
		return bad("field out of range")
	}
	if s[21] == '-' {
		off = -off
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, us*1000, time.FixedZone("", off*60))
	if t.Day() != d {
		return bad("no such day")
	}
	return t, nil
}
