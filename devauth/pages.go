package devauth

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// describeScope says what a scope allows, or names it when nothing says.
func (s *Server) describeScope(scope string) string {
	if s.cfg.Describe != nil {
		if d := s.cfg.Describe(scope); d != "" {
			return d
		}
	}
	return scope
}

const pageCSS = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f6;color:#111827}
.banner{background:#fef3c7;color:#78350f;border-bottom:1px solid #f59e0b;padding:.6rem 1rem;text-align:center;font-weight:600;font-size:.9rem}
main{max-width:34rem;margin:1.5rem auto;padding:0 1rem}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:12px;padding:1.5rem;box-shadow:0 1px 3px rgba(0,0,0,.06)}
h1{font-size:1.35rem;margin:0 0 .75rem;line-height:1.3}
p{margin:.5rem 0}
.muted{color:#4b5563;font-size:.9rem}
.error{background:#fee2e2;color:#991b1b;border:1px solid #fca5a5;border-radius:8px;padding:.6rem .8rem;margin:.75rem 0}
fieldset{border:1px solid #e5e7eb;border-radius:8px;margin:1rem 0;padding:.5rem .75rem}
legend{font-weight:600;padding:0 .25rem}
.scope{display:flex;align-items:center;gap:.75rem;padding:.55rem .25rem;border-top:1px solid #f3f4f6;cursor:pointer}
.scope:first-of-type{border-top:0}
.scope input{width:1.25rem;height:1.25rem;flex:none;margin:0}
.scope code{display:block;color:#6b7280;font-size:.8rem}
label.field{display:block;font-weight:600;margin:1rem 0 .35rem}
input[type=text]{width:100%;font:inherit;padding:.6rem .7rem;border:1px solid #d1d5db;border-radius:8px}
input[type=text]:focus{outline:2px solid #2563eb;outline-offset:1px}
.buttons{display:flex;gap:.75rem;margin-top:1.25rem;flex-wrap:wrap}
button{flex:1 1 10rem;font:inherit;font-weight:600;padding:.7rem 1rem;border-radius:8px;border:1px solid #d1d5db;background:#fff;color:#111827;cursor:pointer}
button.primary{background:#2563eb;border-color:#2563eb;color:#fff}
pre{background:#111827;color:#e5e7eb;padding:.8rem;border-radius:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all;font-size:.8rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem .75rem;font-size:.9rem}
dt{color:#4b5563}dd{margin:0;word-break:break-all}
`

var pages = template.Must(template.New("layout").Parse(`{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} · Development authorization server</title>
<style>` + pageCSS + `</style></head>
<body><div class="banner" role="note">Development authorization server — do not use in production</div>
<main><div class="card">{{end}}
{{define "bottom"}}</div></main></body></html>{{end}}

{{define "error"}}{{template "top" .}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Detail}}<p class="muted" id="detail">Details for the developer: {{.Detail}}</p>{{end}}
{{template "bottom" .}}{{end}}

{{define "consent"}}{{template "top" .}}
<h1>Authorize {{.ClientName}}</h1>
<p><strong>{{.ClientName}}</strong> wants to use the calculator at <strong>{{.Resource}}</strong> on your behalf.
After you answer you will be sent back to <strong>{{.RedirectHost}}</strong>.</p>
{{if .ClientHost}}<p class="muted" id="client-id">The application is identified by its metadata document at <strong>{{.ClientHost}}</strong>: <code>{{.ClientID}}</code></p>{{end}}
{{if .Error}}<div class="error" role="alert">{{.Error}}</div>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="id" value="{{.ID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<fieldset><legend>Allow it to</legend>
{{range .Scopes}}<label class="scope"><input type="checkbox" name="scope" value="{{.Value}}"{{if .Checked}} checked{{end}}><span>{{.Description}}<code>{{.Value}}</code></span></label>
{{end}}</fieldset>
<label class="field" for="user">User name</label>
<input type="text" id="user" name="user" value="{{.User}}" placeholder="Type any user name" maxlength="64" autocomplete="username" autocapitalize="none" spellcheck="false" pattern="[A-Za-z0-9._@+\-]{1,64}" required>
<p class="muted">No password: this server is for development. Any name will do; it becomes the token's subject.{{if .Prefilled}} {{.Prefilled}}{{end}}</p>
<div class="buttons">
<button type="submit" name="action" value="approve" class="primary">Approve</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button>
</div>
</form>
{{template "bottom" .}}{{end}}

{{define "tokenpage"}}{{template "top" .}}
<h1>Development tokens</h1>
<p>Connect an MCP client to <strong>{{.Resource}}</strong>: it discovers this server and walks you through login. Or mint a token here and call the gateway with curl.</p>
{{if .Error}}<div class="error" role="alert">{{.Error}}</div>{{end}}
{{if .Token}}
<h2 style="font-size:1.1rem">Your token</h2>
<dl><dt>user</dt><dd>{{.User}}</dd><dt>scopes</dt><dd>{{.ScopeString}}</dd><dt>expires</dt><dd>{{.Expires}}</dd></dl>
<pre id="token">{{.Token}}</pre>
<p>Try it:</p>
<pre id="curl">{{.Curl}}</pre>
{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<fieldset><legend>Scopes</legend>
{{range .Scopes}}<label class="scope"><input type="checkbox" name="scope" value="{{.Value}}"{{if .Checked}} checked{{end}}><span>{{.Description}}<code>{{.Value}}</code></span></label>
{{end}}</fieldset>
<label class="field" for="user">User name</label>
<input type="text" id="user" name="user" value="{{.User}}" maxlength="64" autocapitalize="none" spellcheck="false" required>
<div class="buttons"><button type="submit" class="primary">Mint a token</button></div>
</form>
<h2 style="font-size:1.1rem">This server</h2>
<dl><dt>issuer</dt><dd>{{.Issuer}}</dd><dt>metadata</dt><dd>{{.MetadataURL}}</dd><dt>resource</dt><dd>{{.Resource}}</dd></dl>
{{template "bottom" .}}{{end}}
`))

type scopeOption struct {
	Value, Description string
	Checked            bool
}

type pageData struct {
	Title        string
	Message      string
	Detail       string // the refusal's precise reason, on an error page
	Error        string
	Action       string
	ID, CSRF     string
	ClientName   string
	ClientHost   string // the host of a client_id URL (Client ID Metadata Document)
	ClientID     string
	Prefilled    string // says where the prefilled user name comes from
	RedirectHost string
	Resource     string
	User         string
	Scopes       []scopeOption
	// token page
	Token, ScopeString, Expires, Curl string
	Issuer, MetadataURL               string
}

func (s *Server) render(w http.ResponseWriter, status int, name, csp string, data *pageData) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("devauth: rendering a page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	noStore(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

const baseCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"

func (s *Server) renderError(w http.ResponseWriter, status int, title, msg, detail string) {
	s.render(w, status, "error", baseCSP+"; form-action 'none'", &pageData{Title: title, Message: msg, Detail: detail})
}

// renderConsent shows the consent page. The CSP's form-action allows this
// server and the redirect URI's origin: Chromium applies form-action to the
// redirect that answers the form.
func (s *Server) renderConsent(w http.ResponseWriter, status int, id string, p *pendingAuth, user string, checked map[string]bool, errMsg string) {
	name := p.clientName
	if name == "" {
		name = "An unnamed application"
	}
	var opts []scopeOption
	for _, sc := range p.scopes {
		opts = append(opts, scopeOption{Value: sc, Description: s.describeScope(sc), Checked: checked[sc]})
	}
	host, source := redirectDisplay(p.redirectURI)
	prefilled := ""
	if user != "" && user == p.loginHint {
		prefilled = p.hintFrom
	}
	s.render(w, status, "consent", baseCSP+"; form-action 'self' "+source, &pageData{
		Title:        "Authorize " + name,
		Action:       s.path + "/consent",
		ID:           id,
		CSRF:         p.csrf,
		ClientName:   name,
		ClientHost:   p.clientHost,
		ClientID:     p.clientID,
		RedirectHost: host,
		Prefilled:    prefilled,
		Resource:     s.cfg.Resource,
		User:         user,
		Scopes:       opts,
		Error:        errMsg,
	})
}

// redirectDisplay returns the host to show for a redirect URI and the CSP
// source expression that allows navigating to it.
func redirectDisplay(redirectURI string) (host, source string) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return redirectURI, "'none'"
	}
	switch u.Scheme {
	case "http", "https":
		if strings.Contains(u.Hostname(), ":") { // IPv6 literals are not valid CSP host-sources
			return u.Host, u.Scheme + ":"
		}
		return u.Host, u.Scheme + "://" + u.Host
	default:
		return u.Scheme + ":", u.Scheme + ":"
	}
}

// handleTokenPage serves the issuer root: a form that mints a token for a
// user name and scopes, and shows it with a ready curl command.
func (s *Server) handleTokenPage(w http.ResponseWriter, r *http.Request) {
	data := &pageData{
		Title:       "Development tokens",
		Action:      s.path + "/",
		Resource:    s.cfg.Resource,
		Issuer:      s.issuer,
		MetadataURL: s.MetadataURL(),
		User:        "developer",
	}
	checked := map[string]bool{}
	for _, sc := range s.offered {
		checked[sc] = true
	}
	status := http.StatusOK
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			s.refusePage(w, r, requestError("the token page form does not parse (or is larger than 64 KiB)"), "Invalid form", "The form could not be read.")
			return
		}
		if !s.usePageCSRF(r.PostForm.Get("csrf")) {
			ref := refused(http.StatusForbidden, "invalid_request", "the token page form's CSRF token is wrong, expired or already used")
			ref.warn = true
			s.refusePage(w, r, ref, "Forbidden", "The form's security token is not valid or was already used. Reload the page and try again.")
			return
		}
		data.User = strings.TrimSpace(r.PostForm.Get("user"))
		var chosen []string
		for _, sc := range s.offered {
			checked[sc] = slices.Contains(r.PostForm["scope"], sc)
			if checked[sc] {
				chosen = append(chosen, sc)
			}
		}
		switch {
		case !ValidUser(data.User):
			data.Error = "Enter a user name of 1 to 64 letters, digits or . _ @ + -"
			status = http.StatusBadRequest
		case len(chosen) == 0 && len(s.offered) > 0:
			data.Error = "Choose at least one scope."
			status = http.StatusBadRequest
		default:
			tok, err := s.MintToken(data.User, chosen)
			if err != nil {
				data.Error = err.Error()
				status = http.StatusBadRequest
				break
			}
			data.Token = tok
			data.ScopeString = strings.Join(chosen, " ")
			data.Expires = s.now().Add(s.cfg.AccessTokenTTL).UTC().Format(time.RFC3339)
			data.Curl = s.curlCommand(tok)
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.refusePage(w, r, refused(http.StatusMethodNotAllowed, "invalid_request", "method "+quoted(r.Method)+" is not allowed; use GET or POST"), "Method not allowed", "Use GET or POST.")
		return
	}
	if data.Error != "" {
		s.logRefusal(r, refused(status, "invalid_request", data.Error))
	}
	for _, sc := range s.offered {
		data.Scopes = append(data.Scopes, scopeOption{Value: sc, Description: s.describeScope(sc), Checked: checked[sc]})
	}
	data.CSRF = s.newPageCSRF()
	s.render(w, status, "tokenpage", baseCSP+"; form-action 'self'", data)
}

func (s *Server) newPageCSRF() string {
	tok := newSecret()
	now := s.now()
	s.mu.Lock()
	s.pageCSRF.DropOldestWhile(func(exp time.Time) bool { return !now.Before(exp) })
	s.pageCSRF.Put(tok, now.Add(pageCSRFTTL))
	s.mu.Unlock()
	return tok
}

// usePageCSRF consumes a token page CSRF token.
func (s *Server) usePageCSRF(tok string) bool {
	if tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.pageCSRF.Remove(tok)
	return ok && s.now().Before(exp)
}

// curlCommand is a shell command that calls the calculator on the gateway.
func (s *Server) curlCommand(token string) string {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calculator","arguments":` + s.exampleJS + `}}`
	return "curl -sS " + shellQuote(s.cfg.Resource) + " \\\n" +
		"  -H " + shellQuote("Authorization: Bearer "+token) + " \\\n" +
		"  -H 'Content-Type: application/json' \\\n" +
		"  -H 'Accept: application/json, text/event-stream' \\\n" +
		"  -H 'MCP-Protocol-Version: 2025-11-25' \\\n" +
		"  -d " + shellQuote(body)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
