package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
)

// ackedCategory is what the state file remembers of a category.
type ackedCategory struct {
	// Hash is the hash of the last acknowledged report.
	Hash string `json:"hash"`
	// At is that report's At.
	At time.Time `json:"at"`
	// AckedAt is when the acknowledgement was recorded.
	AckedAt time.Time `json:"acked_at"`
}

// stateFile is the JSON document of Options.StateFile.
type stateFile struct {
	Version int                      `json:"version"`
	Acked   map[string]ackedCategory `json:"acked"`
}

const stateVersion = 1

// loadState reads the state file; a missing file is an empty state, and an
// unreadable or corrupt one is an empty state plus an error to log.
func loadState(path string) (map[string]ackedCategory, error) {
	acked := map[string]ackedCategory{}
	if path == "" {
		return acked, nil
	}
	fsutil.SweepTemp(path)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return acked, nil
	}
	if err != nil {
		return acked, fmt.Errorf("inventory: read state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return acked, fmt.Errorf("inventory: state file %s is corrupt, starting afresh: %w", path, err)
	}
	if st.Version != stateVersion {
		return acked, fmt.Errorf("inventory: state file %s has version %d, want %d; starting afresh", path, st.Version, stateVersion)
	}
	for k, v := range st.Acked {
		acked[k] = v
	}
	return acked, nil
}

// saveState writes the state atomically: a temporary file in the same
// directory, written, fsynced and closed, renamed over path, then the
// directory fsynced (where the OS allows it). The temporary file is removed
// on error.
func saveState(path string, acked map[string]ackedCategory) error {
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Acked: acked}, "", "  ")
	if err != nil {
		return fmt.Errorf("inventory: encode state: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("inventory: write state: %w", err)
	}
	return nil
}
