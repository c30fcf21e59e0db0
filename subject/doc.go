// Package subject names the NATS subjects, JetStream streams, KV buckets and
// object stores of the kanade agent protocol, and builds subjects from
// validated tokens.
//
// A token (pc id, group, request id, exec id, inventory category) is
// embedded raw in a subject, so a builder refuses one that is empty, longer
// than [MaxTokenLen] bytes, or holds '.', '*', '>', whitespace or a control
// character: such a token would change which messages a subscription sees.
// Builders return a *[TokenError]; nothing should ever publish or subscribe
// with an unchecked token.
package subject
