//go:build windows

package inventory

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// uninstallPath is the key listing installed programs.
const uninstallPath = `SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall`

// uninstallRoot is one place installed programs are listed.
type uninstallRoot struct {
	key    registry.Key
	path   string
	hive   string // reported as Hive: HKLM, or HKU\<SID>
	view   string // reported as View: "64", "32", or "" (per-user keys are not redirected)
	access uint32
}

// readUninstall lists installed programs from the Uninstall key of HKLM in
// both registry views (KEY_WOW64_64KEY and KEY_WOW64_32KEY) and of every
// loaded user hive under HKEY_USERS (per-user installs; HKCU would only be
// the agent's own, SYSTEM). Each subkey with a DisplayName gives one row of
// uninstallProps plus KeyName, Hive and View. A key that cannot be opened
// is a problem; a missing one (no 32-bit view on 32-bit Windows, a user
// without per-user installs) is not.
func readUninstall(ctx context.Context) (result, error) {
	roots := []uninstallRoot{
		{registry.LOCAL_MACHINE, uninstallPath, "HKLM", "64", registry.WOW64_64KEY},
		{registry.LOCAL_MACHINE, uninstallPath, "HKLM", "32", registry.WOW64_32KEY},
	}
	if !is64BitWindows() {
		roots = roots[1:2]
		roots[0].access, roots[0].view = 0, "32"
	}
	var res result
	if users, err := registry.USERS.ReadSubKeyNames(-1); err == nil {
		for _, sid := range users {
			if strings.HasSuffix(sid, "_Classes") || sid == ".DEFAULT" {
				continue
			}
			roots = append(roots, uninstallRoot{registry.USERS, sid + `\` + uninstallPath, `HKU\` + sid, "", 0})
		}
	} else {
		res.Problems = append(res.Problems, problem{Err: fmt.Errorf("inventory: list HKEY_USERS: %w", err)})
	}
	res.Rows = []map[string]any{}
	for _, r := range roots {
		if err := ctx.Err(); err != nil {
			return result{}, err
		}
		readUninstallRoot(r, &res)
	}
	return res, nil
}

func readUninstallRoot(r uninstallRoot, res *result) {
	k, err := registry.OpenKey(r.key, r.path, registry.ENUMERATE_SUB_KEYS|registry.QUERY_VALUE|r.access)
	if errors.Is(err, registry.ErrNotExist) {
		return
	}
	if err != nil {
		res.Problems = append(res.Problems, problem{Err: fmt.Errorf("inventory: open %s\\%s (view %q): %w", r.hive, uninstallPath, r.view, err)})
		return
	}
	defer k.Close()
	names, err := k.ReadSubKeyNames(-1)
	if err != nil {
		res.Problems = append(res.Problems, problem{Err: fmt.Errorf("inventory: list %s\\%s (view %q): %w", r.hive, uninstallPath, r.view, err)})
		return
	}
	var raws []map[string]any
	for _, name := range names {
		sk, err := registry.OpenKey(k, name, registry.QUERY_VALUE|r.access)
		if err != nil {
			res.Problems = append(res.Problems, problem{Err: fmt.Errorf("inventory: open %s\\...\\Uninstall\\%s: %w", r.hive, name, err)})
			continue
		}
		raw := map[string]any{"KeyName": name, "Hive": r.hive}
		if r.view != "" {
			raw["View"] = r.view
		}
		for _, p := range uninstallProps {
			if v, ok := regRaw(sk, p.Name); ok {
				raw[p.Name] = v
			}
		}
		sk.Close()
		raws = append(raws, raw)
	}
	dec := decodeUninstall(raws)
	res.Rows = append(res.Rows, dec.Rows...)
	res.Problems = append(res.Problems, dec.Problems...)
}

// regRaw reads a registry value as a raw value: string (REG_SZ,
// REG_EXPAND_SZ, unexpanded), uint64 (REG_DWORD, REG_QWORD), []any of
// strings (REG_MULTI_SZ) or rawUnsupported. ok is false when the value does
// not exist.
func regRaw(k registry.Key, name string) (v any, ok bool) {
	_, typ, err := k.GetValue(name, nil)
	if errors.Is(err, registry.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		return rawUnsupported{Desc: "(" + err.Error() + ")"}, true
	}
	switch typ {
	case registry.SZ, registry.EXPAND_SZ:
		s, _, err := k.GetStringValue(name)
		if err != nil {
			return rawUnsupported{Desc: "(" + err.Error() + ")"}, true
		}
		return s, true
	case registry.DWORD, registry.QWORD:
		n, _, err := k.GetIntegerValue(name)
		if err != nil {
			return rawUnsupported{Desc: "(" + err.Error() + ")"}, true
		}
		return n, true
	case registry.MULTI_SZ:
		ss, _, err := k.GetStringsValue(name)
		if err != nil {
			return rawUnsupported{Desc: "(" + err.Error() + ")"}, true
		}
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out, true
	}
	return rawUnsupported{Desc: fmt.Sprintf("registry type %d", typ)}, true
}

// is64BitWindows reports whether Windows is 64-bit (always, for a 64-bit
// agent; for a 32-bit agent, when it runs under WOW64).
func is64BitWindows() bool {
	if strings.HasSuffix(runtime.GOARCH, "64") {
		return true
	}
	var wow bool
	if err := windows.IsWow64Process(windows.CurrentProcess(), &wow); err != nil {
		return false
	}
	return wow
}
