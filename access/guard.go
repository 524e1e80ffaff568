package access

import (
	"context"
	"errors"
	"sync/atomic"
)

// Guard authorizes operations against a Policy and audits every decision,
// allowed or denied, through an Auditor. It is what a keyring or the GORM
// layer takes as its authorizer. The policy can be swapped at run time
// (SetPolicy) while Authorize runs in other goroutines.
type Guard struct {
	policy  atomic.Pointer[Policy]
	auditor *Auditor
}

// NewGuard returns a Guard over policy and auditor; both are required.
func NewGuard(policy *Policy, auditor *Auditor) (*Guard, error) {
	if policy == nil {
		return nil, errors.New("access: NewGuard: nil policy")
	}
	if auditor == nil {
		return nil, errors.New("access: NewGuard: nil auditor")
	}
	g := &Guard{auditor: auditor}
	g.policy.Store(policy)
	return g, nil
}

// Authorize decides whether the principal in ctx may do action on resource
// (see Policy.Authorize), audits the decision, and returns nil only when the
// action is allowed and the audit record was written (or the Auditor fails
// open). A denial is a *DeniedError wrapping ErrAccessDenied; a failed audit
// write is an error wrapping ErrAuditFailed, and fails even an allowed
// action.
func (g *Guard) Authorize(ctx context.Context, action, resource string) error {
	pr := principalFrom(ctx)
	reason := g.policy.Load().decide(pr, action, resource)
	rec := Record{Action: action, Resource: resource, Decision: DecisionAllow, Reason: reason}
	if reason != "" {
		rec.Decision = DecisionDeny
	}
	if pr != nil {
		rec.UserID, rec.Roles = pr.UserID, pr.Roles
	}
	auditErr := g.auditor.Record(ctx, rec)
	if reason != "" {
		denied := &DeniedError{Action: action, Resource: resource, Reason: reason}
		if auditErr != nil {
			return errors.Join(denied, auditErr)
		}
		return denied
	}
	return auditErr
}

// SetPolicy replaces the policy atomically; decisions already under way use
// the old one. A nil policy is refused.
func (g *Guard) SetPolicy(p *Policy) error {
	if p == nil {
		return errors.New("access: SetPolicy: nil policy")
	}
	g.policy.Store(p)
	return nil
}

// Policy returns the current policy.
func (g *Guard) Policy() *Policy { return g.policy.Load() }

// Auditor returns the Guard's auditor.
func (g *Guard) Auditor() *Auditor { return g.auditor }
