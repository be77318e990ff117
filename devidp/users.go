package devidp

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// User is an end user who can sign in at the provider's login form.
type User struct {
	// Username and Password are what the user types into the login form.
	Username, Password string
	// Subject is the stable "sub" claim of the user's tokens. It defaults to
	// Username when empty.
	Subject string
	// Name, GivenName and FamilyName are released with the "profile" scope,
	// together with Username as "preferred_username".
	Name, GivenName, FamilyName string
	// Email and EmailVerified are released with the "email" scope.
	Email         string
	EmailVerified bool
}

// DefaultUsers returns the users a provider has when [Config.Users] is nil:
//
//	username  password  sub
//	alice     alice     0c5d3b0e-6a57-4f5b-9a1e-a11ce0000001
//	bob       bob       5f0e7b8c-2d44-4c1f-8e6b-b0b000000002
//
// Their subjects are fixed UUIDs, deliberately different from the usernames,
// so that a relying party keying users by preferred_username instead of sub
// shows up in tests. Each call returns a fresh slice.
func DefaultUsers() []User {
	return []User{
		{
			Username:      "alice",
			Password:      "alice",
			Subject:       "0c5d3b0e-6a57-4f5b-9a1e-a11ce0000001",
			Name:          "Alice Anderson",
			GivenName:     "Alice",
			FamilyName:    "Anderson",
			Email:         "alice@example.com",
			EmailVerified: true,
		},
		{
			Username:      "bob",
			Password:      "bob",
			Subject:       "5f0e7b8c-2d44-4c1f-8e6b-b0b000000002",
			Name:          "Bob Brown",
			GivenName:     "Bob",
			FamilyName:    "Brown",
			Email:         "bob@example.com",
			EmailVerified: false,
		},
	}
}

// userDirectory is the read-only set of users of a provider, indexed by
// username (for the login form) and by subject (for tokens).
type userDirectory struct {
	byUsername map[string]*User
	bySubject  map[string]*User
}

// newUserDirectory validates users and indexes copies of them.
func newUserDirectory(users []User) (*userDirectory, error) {
	d := &userDirectory{
		byUsername: make(map[string]*User, len(users)),
		bySubject:  make(map[string]*User, len(users)),
	}
	for i := range users {
		u := users[i]
		if u.Username == "" {
			return nil, fmt.Errorf("user %d: username is empty", i)
		}
		if u.Password == "" {
			return nil, fmt.Errorf("user %q: password is empty", u.Username)
		}
		if u.Subject == "" {
			u.Subject = u.Username
		}
		if _, dup := d.byUsername[u.Username]; dup {
			return nil, fmt.Errorf("user %q: duplicate username", u.Username)
		}
		if _, dup := d.bySubject[u.Subject]; dup {
			return nil, fmt.Errorf("user %q: duplicate subject %q", u.Username, u.Subject)
		}
		d.byUsername[u.Username] = &u
		d.bySubject[u.Subject] = &u
	}
	return d, nil
}

// errBadCredentials is returned by authenticate for an unknown username or a
// wrong password; the two are not told apart.
var errBadCredentials = errors.New("invalid username or password")

// authenticate checks a username and password typed into the login form.
func (d *userDirectory) authenticate(username, password string) (*User, error) {
	u, ok := d.byUsername[username]
	if !ok {
		return nil, errBadCredentials
	}
	if subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1 {
		return nil, errBadCredentials
	}
	return u, nil
}

// bySub returns the user with the subject sub.
func (d *userDirectory) bySub(sub string) (*User, bool) {
	u, ok := d.bySubject[sub]
	return u, ok
}

// setUserinfo fills info with the sub claim and the claims that scopes
// release: "profile" releases the name claims and preferred_username,
// "email" releases email and email_verified.
func (u *User) setUserinfo(info *oidc.UserInfo, scopes []string) {
	info.Subject = u.Subject
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = u.Name
		info.GivenName = u.GivenName
		info.FamilyName = u.FamilyName
		info.PreferredUsername = u.Username
	}
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = u.Email
		// As an extra claim, because the typed field omits false.
		info.AppendClaims("email_verified", u.EmailVerified)
	}
}
