package main

import (
	"context"
	"net/http"

	"github.com/keyward/keyward/access"
)

// Audited actions of the sign-in, beside the access actions the guard
// decides.
const (
	actionSignIn  = "sign-in"
	actionSignOut = "sign-out"
)

// maxUserID bounds a user ID taken from a request into the audit log.
const maxUserID = 64

// listUsers lists the users one can sign in as (GET /api/users).
func (a *app) listUsers(http.ResponseWriter, *http.Request) (any, error) {
	var out []User
	for _, u := range a.users {
		if !u.Scripted {
			out = append(out, u)
		}
	}
	return out, nil
}

type signInRequest struct {
	User string `json:"user"`
}

// signIn signs in as one of the configured users (POST /api/signin): the
// demo has no passwords, but the session is a signed cookie, never a
// header the client could set. Every attempt is audited.
func (a *app) signIn(w http.ResponseWriter, r *http.Request) (any, error) {
	var req signInRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	u, ok := a.user(req.User)
	if !ok || u.Scripted {
		id := req.User
		if len(id) > maxUserID {
			id = id[:maxUserID]
		}
		if err := a.auditor.LogAccessAttempt(r.Context(), id, actionSignIn, false); err != nil {
			return nil, err
		}
		return nil, badRequest("no such user")
	}
	if err := a.auditor.LogAccessAttempt(r.Context(), u.ID, actionSignIn, true); err != nil {
		return nil, err
	}
	s := a.sessions.issue(w, u.ID)
	if info := infoFrom(r.Context()); info != nil {
		info.user = u.ID
	}
	return a.sessionView(access.WithPrincipal(r.Context(), u.principal()), u, s.id), nil
}

// signOut ends the session (POST /api/signout).
func (a *app) signOut(w http.ResponseWriter, r *http.Request) (any, error) {
	p := principal(r)
	if err := a.auditor.LogAccessAttempt(r.Context(), p.UserID, actionSignOut, true); err != nil {
		return nil, err
	}
	a.sessions.clear(w)
	return nil, nil
}

// sessionInfo tells the frontend who is signed in, the CSRF token for
// state-changing requests, which pages to offer and which fields the user
// may decrypt. The server decides again on every request.
type sessionInfo struct {
	User  User            `json:"user"`
	CSRF  string          `json:"csrf"`
	Pages []string        `json:"pages"`
	May   map[string]bool `json:"may_decrypt"`
}

// getSession describes the current session (GET /api/session).
func (a *app) getSession(_ http.ResponseWriter, r *http.Request) (any, error) {
	p := principal(r)
	u, _ := a.user(p.UserID)
	return a.sessionView(r.Context(), u, p.Attributes[attrSession]), nil
}

func (a *app) sessionView(ctx context.Context, u User, sessionID string) sessionInfo {
	info := sessionInfo{User: u, CSRF: a.sessions.csrfToken(sessionID), Pages: []string{"records", "stored"},
		May: a.mayDecrypt(ctx)}
	if a.may(ctx, access.ActionManage, access.KeyringResource(keyringName)) {
		info.Pages = append(info.Pages, "keys", "audit", "monitoring")
	}
	return info
}
