//go:build !linux

package timeline

// defaultWtmp is Options.Wtmp's default: none off Linux (the BSDs and
// macOS use other formats).
const defaultWtmp = ""

// defaultJournalctl is Options.Journalctl's default: none off Linux.
func defaultJournalctl() string { return "" }
