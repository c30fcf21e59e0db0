package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
)

// RegistryTokenPath is the Windows registry value the NATS token is read
// from, as upstream kanade does: a REG_SZ under HKEY_LOCAL_MACHINE that
// deploy tooling restricts to SYSTEM and Administrators.
const RegistryTokenPath = `HKLM\SOFTWARE\kanade\agent\NatsToken`

// Registry key and value of RegistryTokenPath.
const (
	registryAgentKey   = `SOFTWARE\kanade\agent`
	registryTokenValue = "NatsToken"
)

// readRegistryToken returns the value at RegistryTokenPath, "" when the key
// or value is missing or empty. Nil off Windows (no registry).
var readRegistryToken func() (string, error)

// applyRegistryToken makes the registry token (Windows) the NATS token
// when the agent connects to a NATS URL, no --nats-token or
// --nats-token-file flag is given, and no other kind of credential is
// configured. As upstream, the registry wins over KANADE_NATS_TOKEN (and
// over the config file): a service's environment is readable by every
// user, the hardened registry key is not.
func applyRegistryToken(raw map[string]rawValue) error {
	if readRegistryToken == nil || strings.TrimSpace(raw["nats-url"].v) == "" {
		return nil
	}
	for _, k := range []string{"nats-token", "nats-token-file"} {
		if strings.HasPrefix(raw[k].src, "flag ") {
			return nil
		}
	}
	for _, k := range []string{"nats-user", "nats-creds", "nats-nkey"} {
		if raw[k].v != "" {
			return nil
		}
	}
	tok, err := readRegistryToken()
	if err != nil {
		return usageErrorf("registry value %s: %w", RegistryTokenPath, err)
	}
	if tok = strings.TrimSpace(tok); tok == "" {
		return nil
	}
	delete(raw, "nats-token-file")
	raw["nats-token"] = rawValue{tok, "registry " + RegistryTokenPath}
	return nil
}

// readTokenFile returns the token in path, without surrounding white
// space. A file that other users could change or read is refused
// (checkSecret: on Windows, a readable one is a warning).
func readTokenFile(cfg *Config, path string) (string, error) {
	if err := checkSecret(cfg, "--nats-token-file", path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("--nats-token-file refused: %w (it must be readable and changeable only by root/SYSTEM/Administrators or the agent's user)", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--nats-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--nats-token-file %s is empty", path)
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", errors.New("--nats-token-file " + path + ": the token must be one line")
	}
	return tok, nil
}

// redactURL returns u without its user information (a token or a user
// and password), for logs and messages. url.URL.Redacted keeps a token
// given as the user name, so the whole user information is replaced.
func redactURL(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		if p.User != nil {
			p.User = url.User("redacted")
		}
		return p.String()
	}
	if i := strings.LastIndex(u, "@"); i >= 0 {
		return "redacted@" + u[i+1:]
	}
	return u
}

// redactURLs is redactURL of each element of a comma-separated list.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// redactAll is redactURL of each URL.
func redactAll(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = redactURL(u)
	}
	return out
}
