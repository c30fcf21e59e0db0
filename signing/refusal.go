package signing

import "github.com/google/uuid"

// RefusalResultID returns the result_id of the ExecResult refusing command
// requestID on agent pcID for its signature: the UUIDv5 (SHA-1, RFC 9562) in
// the OID namespace of "<request_id>|<pc_id>|signature-refused", in the
// canonical lower-case form. It is deterministic, so a refusal re-sent after
// a restart is deduplicated by the backend.
func RefusalResultID(requestID, pcID string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(requestID+"|"+pcID+"|signature-refused")).String()
}
