package htmlform

import (
	"errors"
	"net/url"
	"slices"
	"testing"
)

const page = `<html><head><title>t</title><script>var x = 1;</script></head><body>
<p id="msg">Hello <b>you</b></p>
<form method="get" action="/search"><input name="q"></form>
<FORM METHOD="POST" ACTION="consent?x=1">
  <input type="hidden" name="id" value="abc">
  <input type="hidden" name="csrf" value="tok">
  <input name="user" placeholder="Type any user name">
  <input type="checkbox" name="scope" value="op:add" checked>
  <input type="checkbox" name="scope" value="op:div">
  <input type="submit" name="go" value="x">
  <button name="action" value="approve">Approve</button>
  <button type="submit" name="action" value="deny">Deny</button>
  <button type="button" name="other" value="no">No</button>
</FORM></body></html>`

func TestFirst(t *testing.T) {
	base, _ := url.Parse("http://as.example/dev-auth/authorize?client_id=c")
	f, err := First([]byte(page), base, "POST")
	if err != nil {
		t.Fatal(err)
	}
	if f.Action.String() != "http://as.example/dev-auth/consent?x=1" || f.Method != "POST" {
		t.Errorf("action %s method %s", f.Action, f.Method)
	}
	if got := f.Values().Encode(); got != "csrf=tok&id=abc&scope=op%3Aadd&user=" {
		t.Errorf("Values = %s", got)
	}
	var scopes []string
	for _, in := range f.OfType("checkbox", "scope") {
		scopes = append(scopes, in.Value)
	}
	if !slices.Equal(scopes, []string{"op:add", "op:div"}) {
		t.Errorf("scope checkboxes %q", scopes)
	}
	if !slices.Equal(f.Buttons["action"], []string{"approve", "deny"}) || !slices.Equal(f.Buttons["go"], []string{"x"}) || f.Buttons["other"] != nil {
		t.Errorf("buttons %v", f.Buttons)
	}
	if g, err := First([]byte(page), base, ""); err != nil || g.Method != "GET" || g.Action.Path != "/search" {
		t.Errorf("first form of any method: %+v, %v", g, err)
	}
	if _, err := First([]byte(page), base, "PUT"); !errors.Is(err, ErrNoForm) {
		t.Errorf("no PUT form: %v", err)
	}
	if s, ok := ElementText([]byte(page), "msg"); !ok || s != "Hello you" {
		t.Errorf("ElementText = %q, %v", s, ok)
	}
	if got := Text([]byte(page)); got != "Hello you Approve Deny No " {
		t.Errorf("Text = %q", got)
	}
}
