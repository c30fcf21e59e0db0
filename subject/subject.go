package subject

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTokenLen is the largest accepted token, in bytes.
const MaxTokenLen = 128

// ErrInvalidToken is wrapped by every *TokenError.
var ErrInvalidToken = errors.New("subject: invalid token")

// TokenError says which token was refused and why. It unwraps to
// ErrInvalidToken.
type TokenError struct {
	// Kind names the token's role, such as "pc_id" or "request_id".
	Kind string
	// Token is the refused value (possibly long or binary; print with %q).
	Token string
	// Reason says what is wrong with it.
	Reason string
}

// Error implements error.
func (e *TokenError) Error() string {
	t := e.Token
	if len(t) > 40 {
		t = t[:40] + "..."
	}
	return fmt.Sprintf("subject: invalid %s %q: %s", e.Kind, t, e.Reason)
}

// Unwrap returns ErrInvalidToken.
func (e *TokenError) Unwrap() error { return ErrInvalidToken }

// ValidToken returns nil if tok can be embedded in a subject as one token,
// or a *TokenError naming kind otherwise.
func ValidToken(kind, tok string) error {
	bad := func(reason string) error { return &TokenError{Kind: kind, Token: tok, Reason: reason} }
	if tok == "" {
		return bad("empty")
	}
	if len(tok) > MaxTokenLen {
		return bad(fmt.Sprintf("%d bytes, over %d", len(tok), MaxTokenLen))
	}
	if !utf8.ValidString(tok) {
		return bad("not valid UTF-8")
	}
	for _, r := range tok {
		switch {
		case r == '.':
			return bad("contains '.'")
		case r == '*':
			return bad("contains '*'")
		case r == '>':
			return bad("contains '>'")
		case unicode.IsSpace(r):
			return bad("contains whitespace")
		case unicode.IsControl(r):
			return bad("contains a control character")
		}
	}
	return nil
}

// ValidPrefix returns nil if p is one or more valid tokens joined by '.'
// (a subject prefix without wildcards, such as an inbox prefix
// "_INBOX.pc-1"), or the *TokenError of its first bad token.
func ValidPrefix(kind, p string) error {
	for _, tok := range strings.Split(p, ".") {
		if err := ValidToken(kind+" token", tok); err != nil {
			return err
		}
	}
	return nil
}

// ValidPcID returns nil if id can serve as a pc id: a valid token that is
// also a KV key (agent_groups holds <pc_id>, agent_config pcs.<pc_id>) and
// a consumer name (agent-<pc_id>), so only ASCII letters, digits, '-', '_'
// and '='. nats.go refuses any other key, so an agent with such an id
// could never read its groups or its config. It returns a *TokenError.
func ValidPcID(id string) error {
	if err := ValidToken("pc_id", id); err != nil {
		return err
	}
	for i := 0; i < len(id); i++ {
		if !pcIDByte(id[i]) {
			r, _ := utf8.DecodeRuneInString(id[i:])
			return &TokenError{Kind: "pc_id", Token: id, Reason: fmt.Sprintf("contains %q: a pc id is also a KV key, so only ASCII letters, digits, '-', '_' and '='", r)}
		}
	}
	return nil
}

func pcIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '='
}

// SanitizePcID turns a host name into a valid pc id ([ValidPcID]):
// lower-cased; ASCII letters, digits, '-', '_' and '=' kept; any other
// ASCII character (and invalid UTF-8) replaced by '-'; a non-ASCII letter
// or digit written as 'u' and its lower-case hex code point, so two
// non-ASCII host names stay apart ("経理部-PC" → "u7d4cu7406u90e8-pc"); cut
// to MaxTokenLen bytes. An empty result becomes "unknown".
func SanitizePcID(host string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		var part string
		switch {
		case r < utf8.RuneSelf && pcIDByte(byte(r)):
			part = string(r)
		case r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			part = "u" + strconv.FormatInt(int64(r), 16)
		default:
			part = "-"
		}
		if b.Len()+len(part) > MaxTokenLen {
			break
		}
		b.WriteString(part)
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

func join(prefix string, kinds []string, toks []string) (string, error) {
	for i, t := range toks {
		if err := ValidToken(kinds[i], t); err != nil {
			return "", err
		}
	}
	return prefix + strings.Join(toks, "."), nil
}

// Static subjects and wildcards.
const (
	CommandsAll      = "commands.all"     // Commands for every agent.
	CommandsWildcard = "commands.>"       // Every command subject (stream EXEC).
	ResultsWildcard  = "results.>"        // Every result (stream RESULTS).
	EventsWildcard   = "events.>"         // Every event (stream EVENTS).
	ObsWildcard      = "obs.>"            // Every obs event (stream OBS_EVENTS).
	InventoryAll     = "inventory.>"      // Every inventory report (stream INVENTORY).
	HeartbeatAll     = "heartbeat.*"      // Every agent's heartbeat.
	HostPerfAll      = "host_perf.*"      // Every agent's HostPerf.
	EventsStartedAll = "events.started.>" // Every EventStarted.
)

// CommandsGroup returns commands.group.<group>.
func CommandsGroup(group string) (string, error) {
	return join("commands.group.", []string{"group"}, []string{group})
}

// CommandsPC returns commands.pc.<pcID>.
func CommandsPC(pcID string) (string, error) {
	return join("commands.pc.", []string{"pc_id"}, []string{pcID})
}

// Kill returns kill.<execID>.
func Kill(execID string) (string, error) {
	return join("kill.", []string{"exec_id"}, []string{execID})
}

// Ping returns agents.<pcID>.ping.
func Ping(pcID string) (string, error) {
	s, err := join("agents.", []string{"pc_id"}, []string{pcID})
	if err != nil {
		return "", err
	}
	return s + ".ping", nil
}

// LogsFetch returns logs.fetch.<pcID>.
func LogsFetch(pcID string) (string, error) {
	return join("logs.fetch.", []string{"pc_id"}, []string{pcID})
}

// Result returns results.<requestID>.
func Result(requestID string) (string, error) {
	return join("results.", []string{"request_id"}, []string{requestID})
}

// EventStarted returns events.started.<execID>.<pcID>.
func EventStarted(execID, pcID string) (string, error) {
	return join("events.started.", []string{"exec_id", "pc_id"}, []string{execID, pcID})
}

// Obs returns obs.<pcID>.
func Obs(pcID string) (string, error) {
	return join("obs.", []string{"pc_id"}, []string{pcID})
}

// Inventory returns inventory.<pcID>.<category>.
func Inventory(pcID, category string) (string, error) {
	return join("inventory.", []string{"pc_id", "category"}, []string{pcID, category})
}

// Heartbeat returns heartbeat.<pcID>.
func Heartbeat(pcID string) (string, error) {
	return join("heartbeat.", []string{"pc_id"}, []string{pcID})
}

// HostPerf returns host_perf.<pcID>.
func HostPerf(pcID string) (string, error) {
	return join("host_perf.", []string{"pc_id"}, []string{pcID})
}

// ExecConsumer returns the name of the durable EXEC replay consumer, agent-<pcID>.
// Consumer names may not hold '/' or '\' either, so such a pc id is refused.
func ExecConsumer(pcID string) (string, error) {
	s, err := join("agent-", []string{"pc_id"}, []string{pcID})
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(pcID, `/\`) {
		return "", &TokenError{Kind: "pc_id", Token: pcID, Reason: `contains '/' or '\', not allowed in a consumer name`}
	}
	return s, nil
}

// ConfigGroupKey returns the agent_config key groups.<group>.
func ConfigGroupKey(group string) (string, error) {
	return join("groups.", []string{"group"}, []string{group})
}

// ConfigPCKey returns the agent_config key pcs.<pcID>.
func ConfigPCKey(pcID string) (string, error) {
	return join("pcs.", []string{"pc_id"}, []string{pcID})
}

// ResultOutputKey returns the result_output object name <requestID>/<stream>,
// where stream is "stdout" or "stderr".
func ResultOutputKey(requestID, stream string) (string, error) {
	if stream != "stdout" && stream != "stderr" {
		return "", &TokenError{Kind: "stream", Token: stream, Reason: "not stdout or stderr"}
	}
	if err := ValidToken("request_id", requestID); err != nil {
		return "", err
	}
	return requestID + "/" + stream, nil
}
