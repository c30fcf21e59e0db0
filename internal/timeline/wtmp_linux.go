package timeline

// defaultWtmp is Options.Wtmp's default.
const defaultWtmp = "/var/log/wtmp"
