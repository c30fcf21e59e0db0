package wire

import "time"

// Reserved exit codes of an ExecResult.
const (
	ExitKilled      int32 = -1  // Killed, timed out or failed to spawn.
	ExitRestarted   int32 = 121 // The agent restarted while launching; outcome unknown.
	ExitUnsupported int32 = 122 // Shell or feature unsupported on this OS.
	ExitRefused     int32 = 123 // Unsigned or signature refused.
	ExitVersionPin  int32 = 124 // script_current[id] != version.
	ExitDeadline    int32 = 125 // deadline_at passed before the start.
	ExitRevoked     int32 = 126 // script_status[id] is REVOKED.
	ExitStale       int32 = 127 // Gate state too stale for the staleness mode.
)

// ExecResult is the outcome of one command on one agent, published on
// results.<request_id>. Fields are in upstream's order (parent_result_id
// after exec_id, skipped after exit_code and omitted when false); the
// fields upstream does not have come last and are marked (ours).
type ExecResult struct {
	// ResultID is a UUIDv4 minted by the agent; the backend's idempotency key.
	ResultID string `json:"result_id"`
	// RequestID is the command's request_id.
	RequestID string `json:"request_id"`
	// ExecID is the command's exec_id, when it had one.
	ExecID string `json:"exec_id,omitempty"`
	// ParentResultID is, on a finalize hook's result, the result_id of the
	// run it followed.
	ParentResultID string `json:"parent_result_id,omitempty"`
	// PcID is the agent's pc id.
	PcID string `json:"pc_id"`
	// ExitCode is the script's exit code or one of the reserved codes.
	ExitCode int32 `json:"exit_code"`
	// Skipped is set when a gate (or this OS) said "not now" and nothing
	// ran (122, 124-127); a signature refusal (123) is not a skip. Omitted
	// when false, as upstream.
	Skipped bool `json:"skipped,omitempty"`
	// Stdout is the captured standard output (lossy UTF-8); empty when offloaded to StdoutObject.
	Stdout string `json:"stdout"`
	// Stderr is the captured standard error (lossy UTF-8) plus the agent's notes; empty when offloaded.
	Stderr string `json:"stderr"`
	// StartedAt is when the agent started handling the run.
	StartedAt time.Time `json:"started_at"`
	// FinishedAt is when the run ended.
	FinishedAt time.Time `json:"finished_at"`
	// StdoutObject is the result_output key holding stdout when it was over 256 KiB.
	StdoutObject string `json:"stdout_object,omitempty"`
	// StderrObject is the result_output key holding stderr when it was over 256 KiB.
	StderrObject string `json:"stderr_object,omitempty"`
	// ManifestID is the command's id (the job / manifest id, AdhocID for ad
	// hoc runs). The agent always sets it; upstream's backend uses it to
	// attribute inventory and check results. Omitted only when empty.
	ManifestID string `json:"manifest_id,omitempty"`
	// CollectObject is the collections object-store key of the first
	// bundle a collect job uploaded.
	CollectObject string `json:"collect_object,omitempty"`
	// StdoutTruncated is set when stdout exceeded the capture cap and was cut (ours).
	StdoutTruncated bool `json:"stdout_truncated,omitempty"`
	// StderrTruncated is set when stderr exceeded the capture cap and was cut (ours).
	StderrTruncated bool `json:"stderr_truncated,omitempty"`
}

// EventStarted announces that a command is about to run, on
// events.started.<exec_id>.<pc_id>. It is only sent when exec_id is set.
// Upstream's fields come first, in upstream's order.
type EventStarted struct {
	// ExecID is the command's exec_id.
	ExecID string `json:"exec_id"`
	// PcID is the agent's pc id.
	PcID string `json:"pc_id"`
	// StartedAt is when the run started.
	StartedAt time.Time `json:"started_at"`
	// ManifestID is the command's id (AdhocID for ad hoc runs); always sent.
	ManifestID string `json:"manifest_id"`
	// Version is the command's version; always sent.
	Version string `json:"version"`
	// ResultID is the result_id the ExecResult of this run will carry; always sent (ours).
	ResultID string `json:"result_id"`
	// RequestID is the command's request_id; always sent (ours).
	RequestID string `json:"request_id"`
}

// MarshalJSON encodes r with its timestamps written as upstream's chrono
// writes them (see Marshal).
func (r ExecResult) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		ResultID        string     `json:"result_id"`
		RequestID       string     `json:"request_id"`
		ExecID          string     `json:"exec_id,omitempty"`
		ParentResultID  string     `json:"parent_result_id,omitempty"`
		PcID            string     `json:"pc_id"`
		ExitCode        int32      `json:"exit_code"`
		Skipped         bool       `json:"skipped,omitempty"`
		Stdout          string     `json:"stdout"`
		Stderr          string     `json:"stderr"`
		StartedAt       chronoTime `json:"started_at"`
		FinishedAt      chronoTime `json:"finished_at"`
		StdoutObject    string     `json:"stdout_object,omitempty"`
		StderrObject    string     `json:"stderr_object,omitempty"`
		ManifestID      string     `json:"manifest_id,omitempty"`
		CollectObject   string     `json:"collect_object,omitempty"`
		StdoutTruncated bool       `json:"stdout_truncated,omitempty"`
		StderrTruncated bool       `json:"stderr_truncated,omitempty"`
	}{
		r.ResultID, r.RequestID, r.ExecID, r.ParentResultID, r.PcID, r.ExitCode, r.Skipped, r.Stdout, r.Stderr,
		chronoTime(r.StartedAt), chronoTime(r.FinishedAt), r.StdoutObject, r.StderrObject, r.ManifestID, r.CollectObject,
		r.StdoutTruncated, r.StderrTruncated,
	})
}

// MarshalJSON encodes e with its timestamp written as upstream's chrono
// writes it (see Marshal).
func (e EventStarted) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		ExecID     string     `json:"exec_id"`
		PcID       string     `json:"pc_id"`
		StartedAt  chronoTime `json:"started_at"`
		ManifestID string     `json:"manifest_id"`
		Version    string     `json:"version"`
		ResultID   string     `json:"result_id"`
		RequestID  string     `json:"request_id"`
	}{e.ExecID, e.PcID, chronoTime(e.StartedAt), e.ManifestID, e.Version, e.ResultID, e.RequestID})
}

// DecodeExecResult decodes an ExecResult.
func DecodeExecResult(b []byte) (*ExecResult, error) {
	var r ExecResult
	if err := decode(b, &r, "exec result"); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeEventStarted decodes an EventStarted.
func DecodeEventStarted(b []byte) (*EventStarted, error) {
	var e EventStarted
	if err := decode(b, &e, "event started"); err != nil {
		return nil, err
	}
	return &e, nil
}
