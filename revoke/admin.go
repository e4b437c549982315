package revoke

// The admin API: POST /admin/revoke, served only on the internal listener
// (METRICS_PORT), never on the public one, and only when ADMIN_TOKEN is
// set.

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
)

// AdminPath is the admin API's revocation endpoint.
const AdminPath = "/admin/revoke"

// MinAdminTokenLength is the shortest ADMIN_TOKEN accepted: 32 characters
// (`openssl rand -hex 32` gives 64), so that it cannot be guessed online.
const MinAdminTokenLength = 32

// maxAdminBody bounds a request body: a token of accesstoken.MaxLength,
// JSON-escaped, and its member name.
const maxAdminBody = 2*accesstoken.MaxLength + 256

// adminRetryAfter is suggested when a revocation could not be published.
const adminRetryAfter = 5 * time.Second

// AdminRequest is the body of POST /admin/revoke: exactly one member.
type AdminRequest struct {
	// Token revokes one access token (it is hashed at once, and never
	// logged, stored or published).
	Token string `json:"token,omitempty"`
	// Sub revokes every token of a subject (the "sub" claim, or the user
	// name when there is no "sub").
	Sub string `json:"sub,omitempty"`
	// ClientID revokes every token issued to an OAuth client.
	ClientID string `json:"client_id,omitempty"`
	// Email revokes every token whose "email" claim is this address
	// (case-insensitively).
	Email string `json:"email,omitempty"`
}

// AdminResponse is the answer to an accepted revocation.
type AdminResponse struct {
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	// Scope is "deployment" when every machine was told (Redis took the
	// record), "machine" when there is no Redis and the revocation
	// applies here only.
	Scope string `json:"scope"`
}

type adminError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// AdminHandler serves POST /admin/revoke, authenticated with
// "Authorization: Bearer <adminToken>" (compared in constant time; a
// refusal is logged with the client's address and why, never with what
// it sent). adminToken must be at least MinAdminTokenLength characters:
// the caller (configuration) checks it; a shorter one makes the handler
// refuse everything.
//
// Answers: 200 with an AdminResponse; 400 invalid_request (not exactly
// one of token, sub, client_id, email; not JSON; too large); 401 (no or a
// wrong admin token); 503 not_propagated with Retry-After when Redis did
// not take the revocation (it applies on this machine; retrying is
// harmless).
func (r *Revoker) AdminHandler(adminToken string) http.Handler {
	want := sha256.Sum256([]byte(adminToken))
	usable := len(adminToken) >= MinAdminTokenLength
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		log := r.cfg.Logger.With("remote", req.RemoteAddr)
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeAdmin(w, http.StatusMethodNotAllowed, adminError{Error: "method_not_allowed"})
			return
		}
		if why := checkAdmin(req, want, usable); why != "" {
			log.Warn("admin API: request refused", "reason", why, "path", req.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcp-gateway admin"`)
			writeAdmin(w, http.StatusUnauthorized, adminError{Error: "unauthorized", ErrorDescription: "send Authorization: Bearer <ADMIN_TOKEN>"})
			return
		}
		rev, err := decodeAdmin(w, req, r)
		if err != nil {
			log.Info("admin API: revocation refused", "err", err)
			writeAdmin(w, http.StatusBadRequest, adminError{Error: "invalid_request", ErrorDescription: err.Error()})
			return
		}
		rev.At = r.cfg.Now()
		err = r.Revoke(req.Context(), SourceAdmin, rev)
		var invalid *sharedcache.InvalidError
		switch {
		case errors.As(err, &invalid):
			writeAdmin(w, http.StatusBadRequest, adminError{Error: "invalid_request", ErrorDescription: invalid.Reason})
		case err != nil:
			w.Header().Set("Retry-After", strconv.Itoa(int(adminRetryAfter/time.Second)))
			writeAdmin(w, http.StatusServiceUnavailable, adminError{Error: "not_propagated",
				ErrorDescription: "applied on this machine only: Redis is unavailable, so the other machines were not told; retry"})
		default:
			scope := "machine"
			if r.Distributed() {
				scope = "deployment"
			}
			log.Warn("admin API: revoked", "kind", rev.Kind, "who", describe(rev), "scope", scope)
			writeAdmin(w, http.StatusOK, AdminResponse{Kind: rev.Kind, At: rev.At.UTC(), Scope: scope})
		}
	})
}

// checkAdmin returns why the request is not authenticated, or "".
func checkAdmin(req *http.Request, want [32]byte, usable bool) string {
	h := req.Header.Get("Authorization")
	if h == "" {
		return "no Authorization header"
	}
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "not a Bearer credential"
	}
	// Comparing digests keeps the comparison constant-time whatever the
	// lengths, and a length never leaks through it.
	got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !usable {
		return "wrong admin token"
	}
	return ""
}

// decodeAdmin reads an AdminRequest strictly (bounded, one JSON object,
// known members only, exactly one of them set) and turns it into a
// revocation.
func decodeAdmin(w http.ResponseWriter, req *http.Request, r *Revoker) (sharedcache.Revocation, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxAdminBody))
	if err != nil {
		return sharedcache.Revocation{}, errors.New("the body is larger than an admin request can be")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var ar AdminRequest
	if err := dec.Decode(&ar); err != nil {
		return sharedcache.Revocation{}, errors.New(`the body must be a JSON object with one of "token", "sub", "client_id", "email"`)
	}
	if dec.More() {
		return sharedcache.Revocation{}, errors.New("the body must hold one JSON object")
	}
	var revs []sharedcache.Revocation
	if ar.Token != "" {
		if len(ar.Token) > accesstoken.MaxLength || !utf8.ValidString(ar.Token) {
			return sharedcache.Revocation{}, errors.New("the token is not one the gateway would accept")
		}
		revs = append(revs, r.TokenRevocation(ar.Token))
	}
	for _, kv := range []struct{ kind, v string }{
		{sharedcache.KindSub, ar.Sub}, {sharedcache.KindClientID, ar.ClientID}, {sharedcache.KindEmail, ar.Email},
	} {
		if kv.v != "" {
			revs = append(revs, sharedcache.Revocation{Kind: kv.kind, Value: kv.v})
		}
	}
	if len(revs) != 1 {
		return sharedcache.Revocation{}, errors.New(`the body must set exactly one of "token", "sub", "client_id", "email"`)
	}
	return revs[0], nil
}

func writeAdmin(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
