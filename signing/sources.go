package signing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kanade/kanade-agent/internal/fsutil"
)

// Where upstream kanade keeps the command keyring and the enforcement
// switch. Windows reads only the registry; other systems only the files.
const (
	// RegistryKey is the registry key holding RegistryKeysValue and
	// RegistryEnforceValue.
	RegistryKey = `HKLM\SOFTWARE\kanade\agent`
	// RegistryKeysValue is the registry value (REG_SZ) holding the keyring
	// document, a JSON array of Entry.
	RegistryKeysValue = "CommandKeys"
	// RegistryEnforceValue is the registry value requesting enforcement:
	// "1", "true" or "yes" (trimmed, any case) turn it on.
	RegistryEnforceValue = "RequireSignedCommands"
	// DefaultKeysFile is the keyring file off Windows.
	DefaultKeysFile = "/etc/kanade/command-keys.json"
	// DefaultEnforceFile is the enforcement file off Windows; it holds "1",
	// "true" or "yes" (trimmed, any case) to turn enforcement on.
	DefaultEnforceFile = "/etc/kanade/require-signed-commands"
)

// Sources says where the command keyring and the enforcement switch are
// read from. The registry, when named, wins when its value is present; a
// registry that cannot be read is an error and does not fall back to the
// file (upstream's precedence). Files are checked with fsutil.CheckTrusted
// before they are read. The zero value reads nothing: no keys, not
// enforcing. Sources implements KeySource.
type Sources struct {
	// Registry is a registry key path such as RegistryKey (HKLM or HKCU
	// roots); "" means none. Ignored off Windows.
	Registry string
	// KeysFile is the keyring file; "" means none.
	KeysFile string
	// EnforceFile is the enforcement file; "" means none.
	EnforceFile string
}

// DefaultSources returns upstream's sources for this system: on Windows the
// registry values under RegistryKey, elsewhere DefaultKeysFile and
// DefaultEnforceFile.
func DefaultSources() Sources {
	if runtime.GOOS == "windows" {
		return Sources{Registry: RegistryKey}
	}
	return DefaultSourcesAt("/")
}

// DefaultSourcesAt returns the file sources of a system other than Windows
// with root (e.g. a test's temporary directory) in place of "/".
func DefaultSourcesAt(root string) Sources {
	return Sources{
		KeysFile:    filepath.Join(root, filepath.FromSlash(DefaultKeysFile)),
		EnforceFile: filepath.Join(root, filepath.FromSlash(DefaultEnforceFile)),
	}
}

// String names the keyring sources, e.g. `file /etc/kanade/command-keys.json`.
func (s Sources) String() string {
	var parts []string
	if s.Registry != "" && registrySupported {
		parts = append(parts, "registry "+s.Registry+" value "+RegistryKeysValue)
	}
	if s.KeysFile != "" {
		parts = append(parts, "file "+s.KeysFile)
	}
	if len(parts) == 0 {
		return "no keyring source"
	}
	return strings.Join(parts, ", then ")
}

// ReadKeys returns the keyring document: the registry value when present
// and not empty, else the keys file when it exists. present is false when
// neither holds anything. A keys file that is blank, untrusted (see
// fsutil.CheckTrusted) or unreadable is an error (write [] to revoke every
// key), as is a registry that cannot be read.
func (s Sources) ReadKeys() (doc []byte, present bool, err error) {
	if s.Registry != "" && registrySupported {
		text, ok, err := readRegistryString(s.Registry, RegistryKeysValue)
		if err != nil {
			return nil, false, err
		}
		if ok && strings.TrimSpace(text) != "" {
			return []byte(text), true, nil
		}
	}
	if s.KeysFile == "" {
		return nil, false, nil
	}
	source := "file " + s.KeysFile
	if err := fsutil.CheckTrusted(s.KeysFile); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnreadable, source, err)
	}
	f, err := os.Open(s.KeysFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnreadable, source, err)
	}
	defer f.Close()
	b, err := readLimited(f, source)
	if err != nil {
		return nil, false, err
	}
	if len(bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")))) == 0 {
		return nil, false, &KeyringError{Source: source, Entry: -1,
			Err: fmt.Errorf("%w: keyring: file is empty: write [] to revoke every key, or remove the file", ErrBadEntry)}
	}
	return b, true, nil
}

// Load reads the keyring (see ReadKeys); nothing provisioned is an empty
// keyring.
func (s Sources) Load() (*Keyring, error) {
	doc, present, err := s.ReadKeys()
	if err != nil || !present {
		return &Keyring{}, err
	}
	return parseSource(doc, s.String())
}

// EnforceRequested reports whether local configuration requests
// enforcement: the registry value when present, else the enforcement file.
// A value of "1", "true" or "yes" (trimmed, any case) is on; anything else,
// or no value and no file, is off. A source that exists but is untrusted
// (see fsutil.CheckTrusted) or cannot be read counts as on, and the error
// says why: whoever could write it could otherwise turn enforcement off.
// (Upstream treats an unreadable source as off; an untrusted file as on.)
func (s Sources) EnforceRequested() (bool, error) {
	if s.Registry != "" && registrySupported {
		text, ok, err := readRegistryString(s.Registry, RegistryEnforceValue)
		if err != nil {
			return true, fmt.Errorf("signing: enforcement switch: %w", err)
		}
		if ok {
			return switchOn(text), nil
		}
	}
	if s.EnforceFile == "" {
		return false, nil
	}
	if err := fsutil.CheckTrusted(s.EnforceFile); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return true, fmt.Errorf("signing: enforcement file: %w", err)
	}
	f, err := os.Open(s.EnforceFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("signing: enforcement file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return true, fmt.Errorf("signing: enforcement file %s: %w", s.EnforceFile, err)
	}
	return switchOn(string(b)), nil
}

// switchOn reads an enforcement value as upstream does.
func switchOn(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes":
		return true
	}
	return false
}
