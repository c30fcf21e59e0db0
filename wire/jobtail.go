package wire

// JobTailRequest is the request body of job.tail.<pc_id> (upstream's
// live job-tail request/reply): the live output of one run, by result_id.
type JobTailRequest struct {
	// ResultID is the result_id of the run whose output is wanted.
	ResultID string `json:"result_id"`
}

// JobTailReply is the reply to a JobTailRequest. Every field but Error is
// always sent.
type JobTailReply struct {
	// Found is set when the agent holds a live buffer for the result_id.
	Found bool `json:"found"`
	// Running is set while the run's process is still executing.
	Running bool `json:"running"`
	// Stdout is the tail of the run's standard output (lossy UTF-8).
	Stdout string `json:"stdout"`
	// Stderr is the tail of the run's standard error (lossy UTF-8).
	Stderr string `json:"stderr"`
	// StdoutTruncated is set when older stdout bytes were dropped.
	StdoutTruncated bool `json:"stdout_truncated"`
	// StderrTruncated is set when older stderr bytes were dropped.
	StderrTruncated bool `json:"stderr_truncated"`
	// Error (ours) says why a request was not served, with Found false:
	// a malformed request, or an unsigned one while the agent enforces
	// signatures. Omitted when empty; upstream readers ignore it.
	Error string `json:"error,omitempty"`
}

// DecodeJobTailRequest decodes a job.tail request; every field is optional
// (upstream: #[serde(default)]), so an empty object asks for result_id "".
func DecodeJobTailRequest(b []byte) (*JobTailRequest, error) {
	var r JobTailRequest
	if err := decode(b, &r, "job tail request"); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeJobTailReply decodes a job.tail reply (the caller's side).
func DecodeJobTailReply(b []byte) (*JobTailReply, error) {
	var r JobTailReply
	if err := decode(b, &r, "job tail reply"); err != nil {
		return nil, err
	}
	return &r, nil
}
