package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kanade/kanade-agent/internal/fsutil"
)

// Where the embedded server's clients find it, under the data directory.
const (
	// LocalConnFile holds the embedded server's token and addresses
	// (LocalConn as JSON), readable only by the agent's user (mode 0600;
	// on Windows the data directory's ACL: SYSTEM and Administrators).
	// The kanade CLI reads it.
	LocalConnFile = "embedded-nats.json"
	// LocalSocketName is the embedded server's local socket (mode 0600).
	LocalSocketName = "nats.sock"
)

// LocalConn is the content of LocalConnFile: how a process of this machine
// with the rights to read the file reaches the embedded server.
type LocalConn struct {
	// Token is the auth token every client must present. It is generated
	// at the first start (32 random bytes, hex) and kept.
	Token string `json:"token"`
	// Socket is the path of the local (Unix domain) socket, when it could
	// be opened.
	Socket string `json:"socket,omitempty"`
	// URL is the TCP address, when --embedded-listen is set.
	URL string `json:"url,omitempty"`
}

// LocalConnPath returns LocalConnFile under dataDir.
func LocalConnPath(dataDir string) string { return filepath.Join(dataDir, LocalConnFile) }

// LocalSocketPath returns LocalSocketName under dataDir.
func LocalSocketPath(dataDir string) string { return filepath.Join(dataDir, LocalSocketName) }

// localToken returns the token of dataDir's LocalConnFile, generating one
// when there is none. A file that group or others may read or write (on
// Unix) is distrusted: its token is replaced, and replaced reports so.
func localToken(dataDir string) (token string, replaced bool, err error) {
	path := LocalConnPath(dataDir)
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", false, err
	case !fi.Mode().IsRegular() || runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0:
		replaced = true
	default:
		b, err := os.ReadFile(path)
		if err != nil {
			return "", false, err
		}
		var lc LocalConn
		if json.Unmarshal(b, &lc) == nil && validToken(lc.Token) {
			return lc.Token, false, nil
		}
		replaced = true
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, err
	}
	return hex.EncodeToString(b[:]), replaced, nil
}

func validToken(t string) bool {
	return len(t) >= 32 && !strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r > '~' })
}

// writeLocalConn writes lc to dataDir's LocalConnFile, mode 0600,
// replacing whatever is there (a symlink included) atomically.
func writeLocalConn(dataDir string, lc LocalConn) error {
	b, err := json.MarshalIndent(lc, "", "  ")
	if err != nil {
		return err
	}
	path := LocalConnPath(dataDir)
	fsutil.SweepTemp(path)
	if err := writeSecretFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
