package devauth

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// refusal is the server saying no to a request: the HTTP status, the OAuth
// error code (RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707 §2 for
// invalid_target) and a description precise enough for a developer to fix
// the request without reading this server's code. The description is sent
// to the client as error_description and logged, so it must never contain a
// token, an authorization code, a code_verifier, a CSRF token or a secret;
// values it quotes from the request (a resource, a redirect URI, a grant
// type) are cut to a bounded length with quoted().
type refusal struct {
	status int
	code   string
	desc   string
	// warn logs the refusal as a warning: what may be an attack (a replayed
	// code or refresh token, a bad CSRF token) or a misconfiguration of the
	// gateway itself (the introspection credentials), rather than a client's
	// everyday mistake.
	warn bool
}

func refused(status int, code, desc string) *refusal {
	return &refusal{status: status, code: code, desc: desc}
}

func grantError(desc string) *refusal { return refused(http.StatusBadRequest, "invalid_grant", desc) }

func requestError(desc string) *refusal {
	return refused(http.StatusBadRequest, "invalid_request", desc)
}

// endpoint names the route a request reached, as the ServeMux pattern that
// matched it (e.g. "/dev-auth/token"), never the raw path, which a client
// controls and may fill with anything.
func endpoint(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	return strings.TrimSuffix(r.Pattern, "{$}")
}

// logRefusal writes the one log line every refusal gets: at info level (a
// developer debugging a client runs at the default level, and a refusal is
// exactly what they need to see), or warn for ref.warn. attrs add context
// such as the client_id; none may be a secret.
func (s *Server) logRefusal(r *http.Request, ref *refusal, attrs ...slog.Attr) {
	level := slog.LevelInfo
	if ref.warn {
		level = slog.LevelWarn
	}
	all := make([]slog.Attr, 0, 5+len(attrs))
	all = append(all,
		slog.String("endpoint", endpoint(r)),
		slog.String("method", r.Method),
		slog.Int("status", ref.status),
		slog.String("error", ref.code),
		slog.String("reason", ref.desc),
	)
	all = append(all, attrs...)
	ctx := r.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	s.log.LogAttrs(ctx, level, "devauth: request refused", all...)
}

// refuse logs ref and answers it as an RFC 6749 §5.2 JSON error.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, ref *refusal, attrs ...slog.Attr) {
	s.logRefusal(r, ref, attrs...)
	writeOAuthError(w, ref.status, ref.code, ref.desc)
}

// refusePage logs a refusal that a person sees in the browser (the
// authorization endpoint before the redirect URI is trusted, RFC 6749
// §4.1.2.1; the consent form; the token page) and renders it as a page:
// message for the person, and the refusal's reason for the developer.
func (s *Server) refusePage(w http.ResponseWriter, r *http.Request, ref *refusal, title, message string, attrs ...slog.Attr) {
	s.logRefusal(r, ref, attrs...)
	s.renderError(w, ref.status, title, message, ref.desc)
}

// maxQuoted bounds how much of a request value a description repeats.
const maxQuoted = 120

// quoted returns v as a Go-quoted string (control characters escaped, so
// a value cannot forge a log line or a page), cut to maxQuoted bytes.
func quoted(v string) string {
	if len(v) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && v[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		return strconv.Quote(v[:cut]) + "…"
	}
	return strconv.Quote(v)
}
