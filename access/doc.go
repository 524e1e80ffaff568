// Package access decides who may use which keys and fields, and keeps a
// tamper-evident record of every decision.
//
// # Policy
//
// A Policy is a set of roles. A role has permissions and may inherit other
// roles (several; cycles and unknown roles are configuration errors). A
// permission grants actions on resources:
//
//   - actions: ActionEncrypt, ActionDecrypt, ActionRotate, ActionRewrap,
//     ActionManage, ActionDerive (computing a derived key such as a blind
//     index or the audit key), or "*" for all of them;
//   - resources: "keyring:NAME" for a keyring and "field:TABLE.COLUMN" for a
//     column. Build them with KeyringResource and FieldResource, never by
//     hand: the helpers escape the characters that would make a string
//     ambiguous or a wildcard. In a policy, '*' in a resource pattern matches
//     any run of characters ("keyring:*", "field:users.*", "field:*.ssn"),
//     and "*" alone matches every resource.
//
// Whatever no role grants is denied. Policies are written in Go (Config and
// NewPolicy) or loaded from a JSON file (ParsePolicy, LoadPolicyFile); YAML
// is not supported.
//
//	policy, err := access.NewPolicy(access.Config{Roles: []access.Role{
//		{Name: "support", Permissions: []access.Permission{
//			{Actions: []string{access.ActionDecrypt}, Resources: []string{"field:users.email"}},
//		}},
//		{Name: "admin", Inherits: []string{"support"}, Permissions: []access.Permission{
//			{Actions: []string{"*"}, Resources: []string{"keyring:*"}},
//		}},
//	}})
//
// The principal (user ID and roles) travels in the context: WithPrincipal
// puts it there, Middleware does so for HTTP requests from an Authenticator
// the application supplies, and PrincipalFrom reads it back. Policy.Authorize
// checks the context's principal; Policy.CheckAccess answers whether one role
// is or inherits another.
//
// # Guard and audit
//
// A Guard combines a Policy with an Auditor: its Authorize method decides
// and writes an audit Record of every decision, allowed or denied. Keyrings
// and the GORM layer take a Guard as their authorizer. The Auditor writes
// to log/slog by default and to an AuditLog, a hash-chained JSON Lines file
// whose records carry a sequence number, the SHA-256 of the previous line
// and an HMAC-SHA256 under a 32-byte audit key. Verify checks such files and
// reports the first edited, forged, inserted, removed or reordered record,
// a torn last line, or (given a Checkpoint) a truncated tail.
//
// The Auditor fails closed: when a record cannot be stored, Guard.Authorize
// returns an error even for an allowed action. WithFailOpen changes that.
//
// # Concurrency
//
// Policy, Guard, Auditor and AuditLog are safe for concurrent use. A Policy
// is immutable; Guard.SetPolicy swaps it atomically (hot reload: load a new
// policy, and swap it in only when it compiled). An AuditLog serializes
// appends; under SyncEachRecord, writers that arrive while an fsync runs are
// made durable together by the next one (group commit). Only one AuditLog
// may write to a directory at a time: on Unix an advisory lock on the active
// log file itself keeps a second writer out (ErrLocked), and a writer whose
// active file is removed or replaced stops at its next sync. An AuditLog,
// an Auditor and a Guard print without the audit key under every verb.
//
// # Errors
//
// Test errors with errors.Is against: ErrAccessDenied (a *DeniedError with
// the reason), ErrUnauthenticated, ErrInvalidPolicy (a *PolicyError with
// file, line, column and field), ErrAuditFailed, ErrInvalidKey, ErrClosed,
// ErrLocked, and from Verify ErrTampered, ErrWrongKey, ErrTornRecord and
// ErrTruncated (each a *VerifyError with file, line and seq) and
// ErrInvalidCheckpoint. No error, log record or audit record contains key
// material or the principal's attributes.
package access
