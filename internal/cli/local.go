package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// LocalConnFile is the file in a kanade-agent's data directory that says
// how to reach its embedded NATS server: JSON {"token", "socket", "url"}.
// The agent writes it readable by its own user only (0600; on Windows the
// data directory admits SYSTEM and Administrators only).
const LocalConnFile = "embedded-nats.json"

// defaultDataDirText describes the default of --data-dir.
const defaultDataDirText = `%ProgramData%\Kanade on Windows, /var/lib/kanade as root, else $XDG_STATE_HOME/kanade or ~/.local/state/kanade`

// localConn is the content of LocalConnFile.
type localConn struct {
	Token  string `json:"token"`
	Socket string `json:"socket,omitempty"`
	URL    string `json:"url,omitempty"`
	path   string
}

// errLocalUnreadable wraps the error of a LocalConnFile that exists but
// cannot be read, typically for want of rights.
var errLocalUnreadable = errors.New("the local agent's credentials cannot be read")

// defaultDataDir is the kanade-agent's default data directory for this
// user, "" when it cannot be told.
func defaultDataDir(getenv func(string) string) string {
	if runtime.GOOS == "windows" {
		pd := getenv("ProgramData")
		if pd == "" {
			pd = getenv("ALLUSERSPROFILE")
		}
		if pd == "" {
			pd = `C:\ProgramData`
		}
		return filepath.Join(pd, "Kanade")
	}
	if os.Geteuid() == 0 {
		return rootDataDir
	}
	if x := getenv("XDG_STATE_HOME"); strings.HasPrefix(x, "/") {
		return filepath.Join(x, "kanade")
	}
	if h := getenv("HOME"); strings.HasPrefix(h, "/") {
		return filepath.Join(h, ".local", "state", "kanade")
	}
	return ""
}

// local reads the local agent's LocalConnFile under --data-dir, or else
// under the default data directory and, for a user other than root off
// Windows, under /var/lib/kanade (where an agent run as root keeps it). It
// returns nil and no error when there is none; an error wrapping
// errLocalUnreadable when one exists but cannot be read.
func (g *globals) local(getenv func(string) string) (*localConn, error) {
	dirs := []string{g.dataDir}
	if g.dataDir == "" {
		dirs = []string{defaultDataDir(getenv)}
		if runtime.GOOS != "windows" && os.Geteuid() != 0 {
			// An agent run as root (a service) keeps its file there.
			dirs = append(dirs, rootDataDir)
		}
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		path := filepath.Join(dir, LocalConnFile)
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("%w: %v: run kanade as the agent's user (root; on Windows an elevated Administrator), or give --nats-url and credentials", errLocalUnreadable, err)
		}
		var lc localConn
		if err := json.Unmarshal(b, &lc); err != nil || lc.Token == "" {
			return nil, fmt.Errorf("%s is not a kanade-agent credentials file (want JSON with a token): %v", path, err)
		}
		lc.path = path
		return &lc, nil
	}
	if g.dataDir != "" {
		return nil, fmt.Errorf("--data-dir %s: no %s in it: is kanade-agent running there without --nats-url?", g.dataDir, LocalConnFile)
	}
	return nil, nil
}

// rootDataDir is the data directory of an agent run as root off Windows.
const rootDataDir = "/var/lib/kanade"

// socketDialer dials the local agent's socket whatever URL it is given.
type socketDialer struct{ path string }

// Dial connects to the socket.
func (d socketDialer) Dial(_, _ string) (net.Conn, error) { return net.Dial("unix", d.path) }
