package runner

import "strings"

// scrubbedPrefixes are the names of environment variables a script never
// inherits from the agent: the agent's own settings (KANADE_NATS_TOKEN,
// KANADE_NATS_PASSWORD, KANADE_NATS_CREDS, ... every variable the daemon
// reads starts with KANADE_) and the NATS tools' (NATS_URL, NATS_PASSWORD,
// NATS_CREDS, ...).
var scrubbedPrefixes = []string{"KANADE_", "NATS_"}

// scrubEnv returns the entries of env ("NAME=value") whose name does not
// start with one of scrubbedPrefixes; fold compares the names
// case-insensitively, as Windows does. env is not modified.
func scrubEnv(env []string, fold bool) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		name := kv
		if fold {
			name = strings.ToUpper(kv)
		}
		for _, p := range scrubbedPrefixes {
			if strings.HasPrefix(name, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}
