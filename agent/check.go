package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/wire"
)

// Health checks (upstream's check_eval.rs and the agent's check_cache.rs).
//
// A command with a check hint is a health check. After it runs (skipped
// commands never run, so they record nothing), the agent derives a
// wire.Check from the run exactly as upstream: on exit 0 from the JSON
// object in stdout (the #KANADE-CHECK fenced block when there is one),
// reading status_field (ok, warn, fail or unknown; anything else, a missing
// field or stdout that is not a JSON object gives unknown with the reason
// as detail) and detail_field; on any other exit, unknown with "check
// script exited N: <first 200 characters of stderr>". The ExecResult is
// not changed: its stdout keeps the payload, from which upstream's backend
// derives the same Check fleet-wide.
//
// The last Check of each name is cached, replacing the previous one, until
// a later run of a check of that name. Upstream keeps the cache in memory
// for its Client App; this agent also keeps it in the data dir
// (checks.json), so it survives a restart, and serves it from Agent.Checks.
// At most maxChecks names are kept (the oldest result goes first) and a
// detail is cut to maxCheckDetail bytes.

const (
	maxChecks       = 512
	maxCheckDetail  = 4096
	maxCheckSnippet = 200 // characters of stderr in a failed check's detail, as upstream
)

// CheckResult is the latest result of one health check (see Agent.Checks).
type CheckResult struct {
	wire.Check
	// At is when the run that produced it finished.
	At time.Time `json:"at"`
	// ResultID is the result_id of that run's ExecResult.
	ResultID string `json:"result_id"`
}

// checkCache holds the latest CheckResult of each check name.
type checkCache struct {
	mu     sync.Mutex
	path   string
	m      map[string]CheckResult
	loaded bool
}

func (c *checkCache) loadLocked() error {
	if c.loaded {
		return nil
	}
	c.loaded = true
	c.m = map[string]CheckResult{}
	b, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var list []CheckResult
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("%s: %w", c.path, err)
	}
	for _, r := range list {
		c.m[r.Name] = r
	}
	return nil
}

// record stores r, replacing the result of the same name, and writes the
// cache to disk.
func (c *checkCache) record(r CheckResult) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	loadErr := c.loadLocked()
	c.m[r.Name] = r
	for len(c.m) > maxChecks {
		oldest := ""
		for name, x := range c.m {
			if oldest == "" || x.At.Before(c.m[oldest].At) {
				oldest = name
			}
		}
		delete(c.m, oldest)
	}
	b, err := json.Marshal(c.listLocked())
	if err == nil {
		err = fsutil.WriteFileAtomic(c.path, b, 0o600)
	}
	return errors.Join(loadErr, err)
}

func (c *checkCache) listLocked() []CheckResult {
	out := make([]CheckResult, 0, len(c.m))
	for _, r := range c.m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y CheckResult) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func (c *checkCache) list() ([]CheckResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.loadLocked()
	return c.listLocked(), err
}

// Checks returns the latest result of every health check this agent ran
// (commands with a check hint), sorted by name, including those of earlier
// runs of the agent with the same data dir.
func (a *Agent) Checks() []CheckResult {
	list, err := a.checks.list()
	if err != nil {
		a.log.Warn("cannot read the check cache", "err", err)
	}
	return list
}

// recordCheck derives and caches the Check of a finished check command.
func (a *Agent) recordCheck(cmd *wire.Command, r *wire.ExecResult, stdout string) {
	c := buildCheck(cmd.Check, r.ExitCode, stdout, r.Stderr)
	if err := a.checks.record(CheckResult{Check: c, At: r.FinishedAt, ResultID: r.ResultID}); err != nil {
		a.log.Error("cannot store the check result", "check", c.Name, "err", err)
	}
}

// buildCheck is upstream's build_check (exit 0) or build_check_failed.
func buildCheck(h *wire.CheckHint, exitCode int32, stdout, stderr string) wire.Check {
	c := wire.Check{Name: h.Name, Label: h.Label, Troubleshoot: h.Troubleshoot, HealthHidden: !h.Health, Status: wire.CheckUnknown}
	statusField, detailField := h.StatusField, h.DetailField
	if statusField == "" {
		statusField = wire.DefaultCheckStatusField
	}
	if detailField == "" {
		detailField = wire.DefaultCheckDetailField
	}
	if exitCode != 0 {
		snippet := strings.TrimSpace(stderr)
		if utf8.RuneCountInString(snippet) > maxCheckSnippet {
			snippet = string([]rune(snippet)[:maxCheckSnippet])
		}
		c.Detail = fmt.Sprintf("check script exited %d", exitCode)
		if snippet != "" {
			c.Detail += ": " + snippet
		}
		return c
	}
	payload := wire.FencedPayload(stdout, wire.CheckBlockBegin, wire.CheckBlockEnd)
	var v any
	dec := json.NewDecoder(strings.NewReader(payload))
	dec.UseNumber()
	err := dec.Decode(&v)
	if err == nil && dec.More() {
		err = errors.New("trailing characters")
	}
	if err != nil {
		c.Detail = cutDetail("check stdout was not JSON: " + err.Error())
		return c
	}
	obj, ok := v.(map[string]any)
	if !ok {
		c.Detail = "check stdout was not a JSON object"
		return c
	}
	sv, ok := obj[statusField]
	if !ok {
		c.Detail = cutDetail(fmt.Sprintf("stdout has no `%s` field", statusField))
		return c
	}
	switch s, _ := sv.(string); s {
	case wire.CheckOK, wire.CheckWarn, wire.CheckFail, wire.CheckUnknown:
		c.Status = s
	default:
		c.Detail = cutDetail(fmt.Sprintf("`%s` = %s is not one of ok/warn/fail/unknown", statusField, compactJSON(sv)))
		return c
	}
	switch d := obj[detailField].(type) {
	case nil:
	case string:
		c.Detail = cutDetail(d)
	default:
		c.Detail = cutDetail(compactJSON(d))
	}
	return c
}

// compactJSON is v written back as compact JSON, as serde_json's Display
// writes a Value.
func compactJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// cutDetail bounds a detail to maxCheckDetail bytes of valid UTF-8.
func cutDetail(s string) string {
	if len(s) <= maxCheckDetail {
		return s
	}
	s = s[:maxCheckDetail]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func newCheckCache(dataDir string) *checkCache {
	return &checkCache{path: filepath.Join(dataDir, "checks.json")}
}
