package oidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Claim is one claim of a JSON object of claims.
type Claim struct {
	Name  string
	Value json.RawMessage
}

// Claims are the claims of an ID token or userinfo response in the order the
// OP wrote them, which a Go map would lose and /bff/user keeps.
type Claims []Claim

// ParseClaims parses a JSON object into Claims. A name that appears twice
// is an error: JSON parsers disagree on which one wins, and a token whose
// claims two parsers read differently is not one to trust (RFC 7519, section
// 4).
func ParseClaims(raw []byte) (Claims, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("claims are not a JSON object")
	}
	var claims Claims
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("claim name is not a string")
		}
		if seen[name] {
			return nil, fmt.Errorf("claim %q appears twice", name)
		}
		seen[name] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("claim %q: %w", name, err)
		}
		claims = append(claims, Claim{Name: name, Value: value})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return claims, nil
}

// Get returns the value of the named claim.
func (c Claims) Get(name string) (json.RawMessage, bool) {
	for _, cl := range c {
		if cl.Name == name {
			return cl.Value, true
		}
	}
	return nil, false
}

// String returns the named claim when it is a JSON string.
func (c Claims) String(name string) string {
	v, ok := c.Get(name)
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// Merge returns c followed by the claims of other that c lacks: the
// userinfo response completes an ID token but never overrides it.
func (c Claims) Merge(other Claims) Claims {
	out := append(Claims(nil), c...)
	for _, cl := range other {
		if _, ok := c.Get(cl.Name); !ok {
			out = append(out, cl)
		}
	}
	return out
}

// MarshalJSON writes the claims as a JSON object, in order.
func (c Claims) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, cl := range c {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, err := json.Marshal(cl.Name)
		if err != nil {
			return nil, err
		}
		buf.Write(name)
		buf.WriteByte(':')
		if len(cl.Value) == 0 {
			buf.WriteString("null")
		} else {
			buf.Write(cl.Value)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads a JSON object, keeping its order.
func (c *Claims) UnmarshalJSON(b []byte) error {
	claims, err := ParseClaims(b)
	if err != nil {
		return err
	}
	*c = claims
	return nil
}
