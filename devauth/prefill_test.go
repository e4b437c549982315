package devauth

import (
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

var userInputRE = regexp.MustCompile(`<input type="text" id="user" name="user" value="([^"]*)" placeholder="([^"]*)"`)

// userField returns the consent page's user name value and placeholder.
func userField(t *testing.T, page string) (value, placeholder string) {
	t.Helper()
	m := userInputRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no user name field in:\n%s", page)
	}
	return html.UnescapeString(m[1]), html.UnescapeString(m[2])
}

// TestConsentUserName: the user name field's placeholder cannot be taken
// for a value, and a later consent for the same client (a step-up) comes
// with the name approved last time already filled in; login_hint wins;
// another client gets nothing.
func TestConsentUserName(t *testing.T) {
	h := newHarness(t, nil)
	const redirect = "http://127.0.0.1:4000/cb"
	clientID := h.register(redirect)
	other := h.register(redirect)
	open := func(id, scope string, extra url.Values) string {
		t.Helper()
		resp, page := h.get(authzRequest{clientID: id, redirectURI: redirect, verifier: oauth2.GenerateVerifier(), scope: scope, extra: extra}.url(h))
		if resp.StatusCode != 200 {
			t.Fatalf("authorize: %d", resp.StatusCode)
		}
		return page
	}

	first := open(clientID, scopeAdd, nil)
	value, placeholder := userField(t, first)
	if value != "" {
		t.Errorf("first consent prefilled %q", value)
	}
	// A placeholder that reads as an instruction, not as a name: it has a
	// space, so it could never be a valid user name.
	if ValidUser(placeholder) || !strings.Contains(strings.ToLower(placeholder), "type") {
		t.Errorf("placeholder %q could be mistaken for a filled-in user name", placeholder)
	}
	if strings.Contains(first, "Filled in from your last approval") {
		t.Error("first consent claims a remembered name")
	}
	f := parseConsent(t, first)
	if _, q := h.answer(f, "approve", "alice", f.checked); q.Get("code") == "" {
		t.Fatalf("approval failed: %v", q)
	}

	stepUp := open(clientID, scopeAdd+" "+scopeDivide, nil)
	if value, _ := userField(t, stepUp); value != "alice" {
		t.Errorf("step-up consent prefilled %q, want alice", value)
	}
	if !strings.Contains(stepUp, "Filled in from your last approval for this application.") {
		t.Error("the page does not say where the name comes from")
	}
	if value, _ := userField(t, open(other, scopeAdd, nil)); value != "" {
		t.Errorf("another client's consent prefilled %q", value)
	}
	hinted := open(clientID, scopeAdd, url.Values{"login_hint": {"bob"}})
	if value, _ := userField(t, hinted); value != "bob" || !strings.Contains(hinted, "login_hint") {
		t.Errorf("login_hint: prefilled %q", value)
	}
	if value, _ := userField(t, open(clientID, scopeAdd, url.Values{"login_hint": {"not valid!"}})); value != "alice" {
		t.Errorf("an invalid login_hint should fall back to the remembered name, got %q", value)
	}

	// A denial does not change the remembered name; a new approval does.
	f = parseConsent(t, open(clientID, scopeAdd, nil))
	h.answer(f, "approve", "carol", f.checked)
	if value, _ := userField(t, open(clientID, scopeAdd, nil)); value != "carol" {
		t.Errorf("remembered %q after carol approved", value)
	}
}

// TestRememberedUsersAreBounded: one remembered name per client, at most
// MaxClients of them.
func TestRememberedUsersAreBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxClients = 3 })
	for i := range 5 {
		h.grant("user"+string(rune('a'+i)), nil)
	}
	if n := h.srv.lastUser.Len(); n != 3 {
		t.Errorf("%d remembered names, want 3", n)
	}
}
