// Package claimsref reads a JSON object of claims the slow, obvious way,
// for tests to check accesstoken.ReadMembers and Members.Claims against:
// encoding/json into a map of every member, then each claim decoded on its
// own by encoding/json. It is how the gateway read claims before
// ReadMembers, and what RFC 8259 and encoding/json say a reader does: exact
// member names, the last of duplicate names, invalid UTF-8 replaced. Only
// tests import it.
package claimsref

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// Read reads data as accesstoken.ReadMembers and Members.Claims together
// do. It returns every member, accesstoken.ErrNotObject when data is not
// one JSON object, and an *accesstoken.ClaimError for a claim of the wrong
// type (the members are returned then too).
func Read(data []byte) (*accesstoken.Claims, map[string]json.RawMessage, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil || members == nil {
		return nil, nil, accesstoken.ErrNotObject
	}
	c := &accesstoken.Claims{}
	for _, d := range []struct {
		name string
		dst  *int64
		has  *bool
	}{{"exp", &c.Exp, &c.HasExp}, {"nbf", &c.Nbf, &c.HasNbf}, {"iat", &c.Iat, &c.HasIat}} {
		m, ok := members[d.name]
		if !ok || string(m) == "null" {
			continue
		}
		var f float64
		if err := json.Unmarshal(m, &f); err != nil || math.IsNaN(f) || f < 0 || f > 253402300799 {
			return nil, members, &accesstoken.ClaimError{Claim: d.name}
		}
		*d.dst, *d.has = int64(f), true
	}
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{"sub", &c.Sub}, {"username", &c.Username}, {"email", &c.Email},
		{"client_id", &c.ClientID}, {"azp", &c.Azp}, {"iss", &c.Iss},
		{"token_type", &c.TokenType}, {"token_use", &c.TokenUse}, {"typ", &c.Typ},
	} {
		if m, ok := members[s.name]; ok && string(m) != "null" {
			if err := json.Unmarshal(m, s.dst); err != nil {
				return nil, members, &accesstoken.ClaimError{Claim: s.name}
			}
		}
	}
	var err error
	if c.Aud, c.HasAud, err = stringOrArray(members["aud"]); err != nil {
		return nil, members, &accesstoken.ClaimError{Claim: "aud"}
	}
	for _, name := range []string{"scope", "scp"} {
		list, _, err := stringOrArray(members[name])
		if err != nil {
			continue // a scope claim that cannot be read grants nothing
		}
		for _, s := range list {
			for _, f := range strings.Split(s, " ") {
				if scopes.ValidToken(f) && !slices.Contains(c.Scopes, f) {
					c.Scopes = append(c.Scopes, f)
				}
			}
		}
	}
	return c, members, nil
}

// stringOrArray reads a string or an array of strings (RFC 7519 §4.1.3);
// ok is false when the member is absent or null.
func stringOrArray(m json.RawMessage) (list []string, ok bool, err error) {
	if m == nil || string(m) == "null" {
		return nil, false, nil
	}
	var s string
	if json.Unmarshal(m, &s) == nil {
		return []string{s}, true, nil
	}
	if err := json.Unmarshal(m, &list); err != nil {
		return nil, false, errors.New("neither a string nor an array of strings")
	}
	if list == nil {
		list = []string{}
	}
	return list, true, nil
}
