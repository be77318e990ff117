package devidp

import "sync/atomic"

// Stats is a snapshot of a provider's counters, for tests that assert what
// a relying party did at the provider.
type Stats struct {
	// Logins counts successful username/password sign-ins at the login form
	// (not sign-ins through an existing OP session).
	Logins int64
	// AuthCodeGrants counts authorization codes exchanged for tokens.
	AuthCodeGrants int64
	// RefreshGrants counts successful refresh_token grants.
	RefreshGrants int64
	// ClientCredentialsGrants counts successful client_credentials grants.
	ClientCredentialsGrants int64
	// Revocations counts revocation requests from authenticated clients,
	// including those for unknown tokens, which RFC 7009 answers with 200.
	Revocations int64
	// BackChannelLogoutsSent counts logout tokens that a client's
	// back-channel logout endpoint accepted with a 2xx response.
	BackChannelLogoutsSent int64
	// BackChannelLogoutsFailed counts logout tokens that could not be
	// delivered or were refused.
	BackChannelLogoutsFailed int64
}

// counters are the live values behind Stats.
type counters struct {
	logins                   atomic.Int64
	authCodeGrants           atomic.Int64
	refreshGrants            atomic.Int64
	clientCredentialsGrants  atomic.Int64
	revocations              atomic.Int64
	backChannelLogoutsSent   atomic.Int64
	backChannelLogoutsFailed atomic.Int64
}

// snapshot reads the counters.
func (c *counters) snapshot() Stats {
	return Stats{
		Logins:                   c.logins.Load(),
		AuthCodeGrants:           c.authCodeGrants.Load(),
		RefreshGrants:            c.refreshGrants.Load(),
		ClientCredentialsGrants:  c.clientCredentialsGrants.Load(),
		Revocations:              c.revocations.Load(),
		BackChannelLogoutsSent:   c.backChannelLogoutsSent.Load(),
		BackChannelLogoutsFailed: c.backChannelLogoutsFailed.Load(),
	}
}
