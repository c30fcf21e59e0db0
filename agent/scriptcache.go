package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/subject"
)

// Script objects are cached in <DataDir>/script_cache/<sha256>, the file named
// by the lower-case hex SHA-256 of its content (upstream's script_cache), so
// a command naming a script_object already fetched once needs no object
// store read: a scheduled run works with the broker down. Every read
// checks the content against the name; a file that does not match is
// removed and fetched again.

// scriptCacheDir is the cache directory.
func (a *Agent) scriptCacheDir() string { return filepath.Join(a.opts.DataDir, "script_cache") }

// cachedScript returns the cached script with this SHA-256, if any.
func (a *Agent) cachedScript(sha string) (string, bool) {
	if !isHexSHA256(sha) {
		return "", false
	}
	p := filepath.Join(a.scriptCacheDir(), sha)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != sha {
		a.log.Warn("cached script does not match its SHA-256; removed", "sha256", sha)
		_ = os.Remove(p)
		return "", false
	}
	return string(b), true
}

// cacheScript stores a script whose SHA-256 was checked. A failure is
// logged: the script was fetched and runs anyway.
func (a *Agent) cacheScript(sha string, body []byte) {
	if !isHexSHA256(sha) {
		return
	}
	dir := a.scriptCacheDir()
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = fsutil.WriteFileAtomic(filepath.Join(dir, sha), body, 0o600)
	}
	if err != nil {
		a.log.Warn("cannot cache script", "sha256", sha, "err", err)
	}
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// resolveScriptObject returns the SHA-256 (hex) of a script object from its
// object store info (digest "SHA-256=<base64url>") and makes sure the
// script is in the cache, fetching it when it is not, so a schedule can
// run it later without a broker.
func (a *Agent) resolveScriptObject(ctx context.Context, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := a.js.ObjectStore(ctx, subject.ObjectScripts)
	if err != nil {
		return "", fmt.Errorf("script_object %s: %w", name, err)
	}
	info, err := store.GetInfo(ctx, name)
	if err != nil {
		return "", fmt.Errorf("script_object %s: %w", name, err)
	}
	d, ok := strings.CutPrefix(info.Digest, "SHA-256=")
	if !ok {
		return "", fmt.Errorf("script_object %s: digest %q is not SHA-256", name, info.Digest)
	}
	raw, err := base64.URLEncoding.DecodeString(d)
	if err != nil || len(raw) != sha256.Size {
		if raw, err = base64.RawURLEncoding.DecodeString(d); err != nil || len(raw) != sha256.Size {
			return "", fmt.Errorf("script_object %s: bad digest %q", name, info.Digest)
		}
	}
	sha := hex.EncodeToString(raw)
	if _, ok := a.cachedScript(sha); !ok {
		if _, err := a.downloadScript(ctx, name, sha); err != nil {
			return "", err
		}
	}
	return sha, nil
}

// errScriptMismatch is wrapped when an object's content does not have the
// announced SHA-256.
var errScriptMismatch = errors.New("sha256 mismatch")
