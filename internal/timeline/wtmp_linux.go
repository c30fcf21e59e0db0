package timeline

// defaultWtmp is Options.Wtmp's default.
const defaultWtmp = "/var/log/wtmp"

// defaultJournalctl is Options.Journalctl's default: journalctl in PATH.
func defaultJournalctl() string { return lookJournalctl() }
