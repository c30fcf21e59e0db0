package runner

import "strings"

// expandCwd expands a working directory as the agent does on Windows
// (upstream kanade does the same), and returns raw unchanged when there is
// nothing to expand:
//
//  1. A leading "~" alone, or followed by `\` or "/", becomes the profile
//     directory of the account the script runs as (profile()), joined to
//     the rest with `\` unless it already ends with a separator. When
//     profile fails, the "~" stays as it is.
//  2. Then each %NAME% is replaced by the value of NAME in env ("NAME=value"
//     entries; names compared case-insensitively; the first match wins), as
//     ExpandEnvironmentStrings does: a NAME that is not set (or is empty, or
//     starts with "=") leaves %NAME% as it is and scanning goes on after
//     its closing %; a % without a closing % is kept. A variable set to
//     the empty string expands to nothing.
//
// $env:NAME and other PowerShell syntax are not expanded.
func expandCwd(raw string, env []string, profile func() (string, error)) string {
	s := raw
	rest, tilde := "", false
	switch {
	case s == "~":
		tilde = true
	case strings.HasPrefix(s, `~\`), strings.HasPrefix(s, "~/"):
		rest, tilde = s[2:], true
	}
	if tilde {
		if p, err := profile(); err == nil && p != "" {
			switch {
			case rest == "":
				s = p
			case strings.HasSuffix(p, `\`) || strings.HasSuffix(p, "/"):
				s = p + rest
			default:
				s = p + `\` + rest
			}
		}
	}
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[i+1 : i+1+j]
		b.WriteString(s[:i])
		if v, ok := lookupEnvFold(env, name); ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+2])
		}
		s = s[i+j+2:]
	}
}

// lookupEnvFold returns the value of name in env, comparing names
// case-insensitively; an empty name or one starting with "=" (the hidden
// per-drive "=C:" entries) is never found.
func lookupEnvFold(env []string, name string) (string, bool) {
	if name == "" || name[0] == '=' {
		return "", false
	}
	for _, kv := range env {
		if len(kv) > len(name) && kv[len(name)] == '=' && strings.EqualFold(kv[:len(name)], name) {
			return kv[len(name)+1:], true
		}
	}
	return "", false
}
