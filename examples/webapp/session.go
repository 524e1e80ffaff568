package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cookieName is the session cookie.
const cookieName = "webapp_session"

// sessionTTL is how long a sign-in lasts.
const sessionTTL = 8 * time.Hour

// sessions issues and checks signed session cookies. A cookie holds the
// user ID, a random session ID and the expiry, with an HMAC-SHA256 under a
// key derived from the keyring: nothing in it is secret, and nothing in it
// can be changed. The CSRF token of a session is another HMAC of its
// session ID, so the server keeps no session state.
type sessions struct {
	key    []byte
	secure bool
	now    func() time.Time
}

func newSessions(key []byte, secure bool) *sessions {
	return &sessions{key: key, secure: secure, now: time.Now}
}

// session is a checked session cookie.
type session struct {
	user string
	id   string
}

var errNoSession = errors.New("webapp: no valid session")

// issue signs user in: it sets a new session cookie and returns the
// session.
func (s *sessions) issue(w http.ResponseWriter, user string) session {
	id := rand.Text()
	exp := s.now().Add(sessionTTL)
	payload := user + "|" + id + "|" + strconv.FormatInt(exp.Unix(), 10)
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    b64(payload) + "." + b64(string(s.mac("session", payload))),
		Path:     "/",
		Expires:  exp,
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteStrictMode,
	})
	return session{user: user, id: id}
}

// clear signs out: it expires the cookie.
func (s *sessions) clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
}

// read returns the request's session if its cookie is well formed, signed
// by this key and not expired.
func (s *sessions) read(r *http.Request) (session, error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, errNoSession
	}
	enc, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return session{}, errNoSession
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(enc)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.mac("session", string(payload))) {
		return session{}, errNoSession
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 {
		return session{}, errNoSession
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || s.now().Unix() >= exp {
		return session{}, errNoSession
	}
	return session{user: parts[0], id: parts[1]}, nil
}

// csrfToken is the CSRF token of a session.
func (s *sessions) csrfToken(id string) string { return b64(string(s.mac("csrf", id))) }

// checkCSRF reports whether token is the CSRF token of the session id.
func (s *sessions) checkCSRF(id, token string) bool {
	return hmac.Equal([]byte(token), []byte(s.csrfToken(id)))
}

// mac is HMAC-SHA256 of purpose and msg under the session key; the purpose
// keeps a CSRF token from ever passing as a cookie signature.
func (s *sessions) mac(purpose, msg string) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
