package devidp

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// ssoSession is an OP session: the user's sign-in at the provider, kept in
// the browser by a cookie, which lets later authorize requests skip the
// login form. Its id is the "sid" claim of ID tokens and logout tokens. The
// cookie value is a separate secret, because relying parties see the sid.
type ssoSession struct {
	id        string
	cookie    string
	subject   string
	authTime  time.Time
	expiresAt time.Time
	clients   map[string]struct{} // clients that got an authorization in the session
}

// endedSession is what is left to do once an OP session has been removed:
// tell its clients over the back channel.
type endedSession struct {
	sid       string
	subject   string
	clientIDs []string
}

// checkSessionLocked reports whether the OP session sid is still alive, so
// that no tokens are issued into an ended session.
func (s *storage) checkSessionLocked(sid string, now time.Time) error {
	sess, ok := s.sessions[sid]
	if !ok || now.After(sess.expiresAt) {
		return fmt.Errorf("OP session: %w", errNotFound)
	}
	return nil
}

// sessionByCookie returns a copy of the live OP session of the cookie value.
func (s *storage) sessionByCookie(cookie string) (*ssoSession, bool) {
	if cookie == "" {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[s.cookies[cookie]]
	if !ok || time.Now().After(sess.expiresAt) {
		return nil, false
	}
	if _, ok := s.users.bySub(sess.subject); !ok {
		return nil, false
	}
	c := *sess
	c.clients = nil
	return &c, true
}

// signIn records that sub has just signed in with the browser that sent
// cookie (possibly empty). If that browser's OP session belongs to the same
// user, it is renewed and keeps its sid; a session of another user ends and
// is returned for back-channel notification, and a new one starts.
func (s *storage) signIn(sub, cookie string) (*ssoSession, []endedSession) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)

	var ended []endedSession
	if sess, ok := s.sessions[s.cookies[cookie]]; ok && cookie != "" {
		if sess.subject == sub && !now.After(sess.expiresAt) {
			sess.authTime = now
			sess.expiresAt = now.Add(s.sessionLifetime)
			c := *sess
			c.clients = nil
			return &c, nil
		}
		ended = s.endSessionsLocked(func(e *ssoSession) bool { return e == sess })
	}
	sess := &ssoSession{
		id:        newID(),
		cookie:    randomToken(32),
		subject:   sub,
		authTime:  now,
		expiresAt: now.Add(s.sessionLifetime),
		clients:   make(map[string]struct{}),
	}
	s.sessions[sess.id] = sess
	s.cookies[sess.cookie] = sess.id
	c := *sess
	c.clients = nil
	return &c, ended
}

// completeAuthRequest marks the pending auth request id as authenticated by
// the OP session sid and records the client as a participant of the
// session.
func (s *storage) completeAuthRequest(id, sid string) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequests[id]
	if !ok || ar.done || ar.loginExpired(now) {
		return fmt.Errorf("auth request: %w", errNotFound)
	}
	sess, ok := s.sessions[sid]
	if !ok || now.After(sess.expiresAt) {
		return fmt.Errorf("OP session: %w", errNotFound)
	}
	ar.done = true
	ar.subject = sess.subject
	ar.sid = sess.id
	ar.authTime = sess.authTime
	sess.clients[ar.clientID] = struct{}{}
	return nil
}

// endSessions removes the OP sessions that match, with their tokens.
func (s *storage) endSessions(match func(*ssoSession) bool) []endedSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endSessionsLocked(match)
}

// endSessionsLocked removes the OP sessions that match, revokes every token
// issued in them, and returns them for back-channel notification.
func (s *storage) endSessionsLocked(match func(*ssoSession) bool) []endedSession {
	var ended []endedSession
	for sid, sess := range s.sessions {
		if !match(sess) {
			continue
		}
		delete(s.sessions, sid)
		delete(s.cookies, sess.cookie)
		s.revokeLocked(func(_, _, tokenSID string) bool { return tokenSID == sid })
		ended = append(ended, endedSession{
			sid:       sid,
			subject:   sess.subject,
			clientIDs: slices.Sorted(maps.Keys(sess.clients)),
		})
	}
	return ended
}
