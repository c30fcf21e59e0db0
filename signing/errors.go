package signing

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidKeyring is wrapped by every error about a keyring's content: bad
// JSON, a bad entry, a duplicate kid. Errors that wrap it are *KeyringError.
var ErrInvalidKeyring = errors.New("signing: invalid keyring")

// ErrBadPublicKey means a keyring entry's public_key is not standard base64
// of exactly 32 bytes.
var ErrBadPublicKey = errors.New("signing: bad public key")

// ErrBadKid means a keyring entry's kid is empty, longer than MaxKidLen bytes
// or holds a control character.
var ErrBadKid = errors.New("signing: bad kid")

// ErrDuplicateKid means two entries of one keyring source share a kid.
var ErrDuplicateKid = errors.New("signing: duplicate kid")

// ErrBadMaxAge means a keyring entry's max_age_secs is not a non-negative
// integer (upstream reads it as a u64).
var ErrBadMaxAge = errors.New("signing: bad max_age_secs")

// ErrBadEntry means a keyring entry is not a JSON object with string kid and
// public_key, or one of its fields has the wrong JSON type or repeats.
var ErrBadEntry = errors.New("signing: bad keyring entry")

// ErrBadSubject means a subject given to Sign is empty, too long, or holds
// a space or control character.
var ErrBadSubject = errors.New("signing: bad subject")

// ErrBadSignTime means a signing time given to Sign is before 1970 or after
// 9999, which the agent would refuse.
var ErrBadSignTime = errors.New("signing: bad signing time")

// ErrUnreadable means a keyring source exists but could not be read (I/O
// error, permission, an untrusted file: see fsutil.CheckTrusted); it comes
// wrapped with the cause.
var ErrUnreadable = errors.New("signing: keyring source unreadable")

// ErrTooLarge means a keyring file or registry value is larger than
// MaxKeyringSize bytes.
var ErrTooLarge = errors.New("signing: keyring too large")

// ErrBadRegistryPath means a registry key path does not start with a
// supported root (HKLM, HKEY_LOCAL_MACHINE, HKCU, HKEY_CURRENT_USER) or has
// no subkey.
var ErrBadRegistryPath = errors.New("signing: bad registry path")

// ErrRegistryValueType means the keyring registry value is neither REG_SZ,
// REG_EXPAND_SZ nor REG_MULTI_SZ; it comes in a *KeyringError.
var ErrRegistryValueType = errors.New("signing: unsupported registry value type")

// KeyringError describes what is wrong with a keyring and where. It unwraps
// to both ErrInvalidKeyring and Err.
type KeyringError struct {
	// Source says where the keyring came from, e.g. `file /etc/kanade/command-keys.json`
	// or `registry HKLM\SOFTWARE\kanade\agent value CommandKeys`; empty for ParseKeyring.
	Source string
	// Entry is the index of the bad entry in its source, or -1 when the whole source is bad.
	Entry int
	// Kid is the bad entry's kid, possibly truncated; empty when unknown.
	Kid string
	// Err is the cause: ErrBadPublicKey, ErrBadKid, ErrDuplicateKid, ErrBadMaxAge,
	// ErrBadEntry, ErrTooLarge, ErrRegistryValueType, or an error wrapping
	// wire.ErrInvalid for malformed JSON.
	Err error
}

// Error reads like `signing: invalid keyring file keys.json: entry 1 (kid "a"): bad public key: ...`.
func (e *KeyringError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidKeyring.Error())
	if e.Source != "" {
		b.WriteString(" ")
		b.WriteString(e.Source)
	}
	if e.Entry >= 0 {
		fmt.Fprintf(&b, ": entry %d", e.Entry)
		if e.Kid != "" {
			fmt.Fprintf(&b, " (kid %q)", e.Kid)
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "signing: "))
	}
	return b.String()
}

// Unwrap returns ErrInvalidKeyring and Err, so errors.Is matches either.
func (e *KeyringError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidKeyring}
	}
	return []error{ErrInvalidKeyring, e.Err}
}
