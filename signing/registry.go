package signing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kanade/kanade-agent/wire"
)

// registryRoot names the hive a registry path starts with.
type registryRoot int

const (
	rootLocalMachine registryRoot = iota + 1
	rootCurrentUser
)

// splitRegistryPath splits `HKLM\SOFTWARE\x` into its root and subkey. The
// root is HKLM, HKEY_LOCAL_MACHINE, HKCU or HKEY_CURRENT_USER, in any case.
func splitRegistryPath(path string) (registryRoot, string, error) {
	head, sub, _ := strings.Cut(path, `\`)
	sub = strings.Trim(sub, `\`)
	var root registryRoot
	switch strings.ToUpper(head) {
	case "HKLM", "HKEY_LOCAL_MACHINE":
		root = rootLocalMachine
	case "HKCU", "HKEY_CURRENT_USER":
		root = rootCurrentUser
	default:
		return 0, "", fmt.Errorf("%w: %q: root must be HKLM or HKCU", ErrBadRegistryPath, path)
	}
	if sub == "" {
		return 0, "", fmt.Errorf("%w: %q: no subkey", ErrBadRegistryPath, path)
	}
	return root, sub, nil
}

// registryValue is the string content of one value under the keyring key.
type registryValue struct {
	name  string
	multi bool     // REG_MULTI_SZ
	texts []string // one for REG_SZ
	// badType is set for a value of another type than REG_SZ, REG_EXPAND_SZ
	// or REG_MULTI_SZ; typ is then its type.
	badType bool
	typ     uint32
}

// parseRegistryValues turns the values read from the keyring key at path
// into a keyring, following the layout documented on LoadRegistry. values
// must be sorted by name.
func parseRegistryValues(path string, values []registryValue) (*Keyring, error) {
	var all []sourcedEntry
	for _, v := range values {
		if v.badType {
			return nil, &KeyringError{
				Source: fmt.Sprintf("registry %s value %q", path, v.name), Entry: -1,
				Err: fmt.Errorf("%w: type %d, want REG_SZ or REG_MULTI_SZ", ErrRegistryValueType, v.typ),
			}
		}
		for i, text := range v.texts {
			source := fmt.Sprintf("registry %s value %q", path, v.name)
			if v.multi {
				source = fmt.Sprintf("registry %s value %q string %d", path, v.name, i)
			}
			entries, err := decodeRegistryText(text, source)
			if err != nil {
				return nil, err
			}
			for j, e := range entries {
				all = append(all, sourcedEntry{KeyringEntry: e, source: source, index: j})
			}
		}
	}
	return buildSourced(all)
}

// decodeRegistryText decodes one registry string: blank, a JSON array of
// entries, or one JSON entry object.
func decodeRegistryText(text, source string) ([]wire.KeyringEntry, error) {
	b := bytes.TrimSpace(bytes.TrimPrefix([]byte(text), []byte("\xef\xbb\xbf")))
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > MaxKeyringSize {
		return nil, &KeyringError{Source: source, Entry: -1, Err: fmt.Errorf("%w: over %d bytes", ErrTooLarge, MaxKeyringSize)}
	}
	if b[0] != '{' {
		return decodeEntries(b, source)
	}
	var e wire.KeyringEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, &KeyringError{Source: source, Entry: -1, Err: fmt.Errorf("%w: keyring entry: %v", wire.ErrInvalid, err)}
	}
	return []wire.KeyringEntry{e}, nil
}

// LoadRegistry reads a keyring from the Windows registry key at path, e.g.
// RegistryPath, or HKCU\Software\kanade-test in tests. The path starts with
// HKLM, HKEY_LOCAL_MACHINE, HKCU or HKEY_CURRENT_USER; the 64-bit view is
// read.
//
// Layout: every value under the key, whatever its name (the default value
// included), contributes entries. A REG_SZ value holds one JSON text; a
// REG_MULTI_SZ value holds one JSON text per string. A JSON text is either a
// keyring (a JSON array of entries, as in the keyring file) or a single entry
// object such as {"kid":"ops-2025","public_key":"...","max_age_secs":300}.
// Blank strings are skipped, so an admin can keep the default value empty.
// REG_EXPAND_SZ is read like REG_SZ, without expansion; any other value type
// is an error (ErrRegistryValueType). All values together form one keyring:
// a kid may appear only once across them (ErrDuplicateKid). For example:
//
//	reg add HKLM\SOFTWARE\kanade\agent\CommandKeys /v ops-2025 /t REG_SZ ^
//	    /d "{\"kid\":\"ops-2025\",\"public_key\":\"<base64>\"}"
//
// A missing key gives an empty keyring and no error. On other systems
// LoadRegistry returns an error wrapping errors.ErrUnsupported, and Load
// skips the registry.
func LoadRegistry(path string) (*Keyring, error) {
	root, sub, err := splitRegistryPath(path)
	if err != nil {
		return nil, err
	}
	values, err := readRegistry(root, sub)
	if err != nil {
		return nil, fmt.Errorf("signing: registry %s: %w", path, err)
	}
	return parseRegistryValues(path, values)
}
