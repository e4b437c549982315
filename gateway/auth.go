package gateway

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/prm"
)

// verifiedTokenInfo is the auth.TokenVerifier handed to the SDK's
// RequireBearerToken. It does not look at the token: authenticate has
// already verified it and stored the result in the request's state.
func verifiedTokenInfo(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
	st := stateFrom(ctx)
	if st == nil || st.ti == nil {
		return nil, auth.ErrInvalidToken
	}
	return st.ti, nil
}

// authenticate implements the resource server's half of RFC 6750: extract
// the bearer token (§2.1), have it verified, and answer with the right
// challenge (§3) when it cannot be used.
func (g *Gateway) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		w := c.Response()
		token, err := prm.TokenFromRequest(r)
		if err != nil {
			if errors.Is(err, prm.ErrNoToken) {
				// RFC 6750 §3.1: a request without authentication gets no
				// error code, just the challenge.
				setAuth(c, AuthMissing)
				ch := g.challenge
				prm.WriteError(w, http.StatusUnauthorized, &ch, prm.ErrorBody{Error: "unauthorized", ErrorDescription: "authorization required: send a bearer token"})
				return nil
			}
			setAuth(c, refused(accesstoken.ReasonMalformed))
			ch := g.challenge
			ch.Error = prm.ErrInvalidRequest
			ch.ErrorDescription = err.Error()
			prm.WriteError(w, http.StatusBadRequest, &ch, prm.ErrorBody{Error: prm.ErrInvalidRequest, ErrorDescription: err.Error()})
			return nil
		}

		// The verifier decides everything about the token, expiry
		// included, with its own clock.
		ti, err := g.cfg.Verifier.Verify(introspect.WithClient(r.Context(), g.clientAddr(r)), token)
		if err == nil && ti == nil {
			err = errors.New("verifier returned no token information")
		}
		if err != nil {
			g.refuse(c, err)
			return nil
		}
		st := stateFrom(r.Context()) // observe, the outermost middleware, put it there
		st.ti, st.token = ti, token
		st.auth = AuthOK
		return next(c)
	}
}

// refuse answers a request whose token could not be accepted. A token the
// authorization server called invalid gets 401 invalid_token; when no
// answer could be had, the client gets 503 with Retry-After, never 401
// (which would send it through a login that cannot help) and never 200.
//
// A client that sent too many unknown tokens (*introspect.RateLimitError)
// gets 429 with Retry-After; the authorization server is not involved.
func (g *Gateway) refuse(c echo.Context, err error) {
	w := c.Response()
	var limited *introspect.RateLimitError
	if errors.As(err, &limited) {
		setAuth(c, AuthRateLimited)
		w.Header().Set("Retry-After", retryAfterSeconds(limited.RetryAfter))
		prm.WriteError(w, http.StatusTooManyRequests, nil, prm.ErrorBody{Error: "rate_limited", ErrorDescription: "too many unrecognised tokens from this client; try again later"})
		return
	}
	var invalid *accesstoken.InvalidError
	if errors.As(err, &invalid) {
		setAuth(c, refused(invalid.Reason))
		ch := g.challenge
		ch.Error = prm.ErrInvalidToken
		ch.ErrorDescription = invalid.Error()
		prm.WriteError(w, http.StatusUnauthorized, &ch, prm.ErrorBody{Error: prm.ErrInvalidToken, ErrorDescription: invalid.Error()})
		return
	}
	setAuth(c, AuthUnavailable)
	retry := introspect.DefaultRetryAfter
	var unavailable *introspect.UnavailableError
	if errors.As(err, &unavailable) && unavailable.RetryAfter > 0 {
		retry = unavailable.RetryAfter
	}
	var clientAuth *introspect.ClientAuthError
	desc := "the authorization server could not be reached to verify the token; try again later"
	switch {
	case errors.Is(err, introspect.ErrOverloaded):
		// Load shedding (counted in introspection_shed_total); the
		// request log line says auth=unavailable.
		desc = "the gateway is overloaded and could not verify the token; try again later"
	case unavailable != nil:
		g.cfg.Logger.WarnContext(c.Request().Context(), "authorization server unavailable", "error", err)
	case errors.As(err, &clientAuth):
		g.cfg.Logger.ErrorContext(c.Request().Context(), "introspection credentials rejected by the authorization server: check INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET", "status", clientAuth.StatusCode)
	default:
		g.cfg.Logger.ErrorContext(c.Request().Context(), "token verification failed", "error", err)
	}
	w.Header().Set("Retry-After", retryAfterSeconds(retry))
	prm.WriteError(w, http.StatusServiceUnavailable, nil, prm.ErrorBody{Error: "temporarily_unavailable", ErrorDescription: desc})
}

// retryAfterSeconds formats d as Retry-After delay-seconds: rounded up, at
// least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
