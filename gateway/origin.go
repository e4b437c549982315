package gateway

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/mcp-gateway/mcp-gateway/internal/loopback"
	"github.com/mcp-gateway/mcp-gateway/prm"
)

// checkOrigin enforces the MCP Streamable HTTP transport rule that servers
// MUST validate the Origin header (DNS rebinding); the SDK does not. A
// request without Origin (every non-browser client) passes; one with an
// Origin that is neither the resource's own, the request's own host, nor in
// ALLOWED_ORIGINS gets 403.
func (g *Gateway) checkOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		origin := c.Request().Header.Get(echo.HeaderOrigin)
		if origin == "" || g.originAllowed(origin, c.Request().Host) {
			return next(c)
		}
		setAuth(c, AuthForbiddenOrigin)
		prm.WriteError(c.Response(), http.StatusForbidden, nil, prm.ErrorBody{Error: "forbidden_origin", ErrorDescription: "requests from this Origin are not allowed"})
		return nil
	}
}

// checkHost is DNS-rebinding protection: a request that reached a loopback
// listener with a Host that is neither loopback nor the resource's own host
// came from a page that had a hostile name resolve to 127.0.0.1. It
// replaces the SDK's check, which would also refuse the resource's own
// public host behind a tunnel to a development server.
func (g *Gateway) checkHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		// The resource's own host first: it is every production request,
		// and formatting the listener address costs allocations.
		if local == nil || strings.EqualFold(r.Host, g.resourceHost) || !loopback.HostPort(local.String()) || loopback.HostPort(r.Host) {
			return next(c)
		}
		prm.WriteError(c.Response(), http.StatusForbidden, nil, prm.ErrorBody{Error: "forbidden_host", ErrorDescription: "this Host is not served here"})
		return nil
	}
}

func (g *Gateway) originAllowed(origin, host string) bool {
	o := strings.ToLower(origin)
	if o == g.origin {
		return true
	}
	for _, a := range g.cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
	}
	// Same origin as the request itself: a page served by this host. The
	// scheme is not compared because TLS usually ends at a proxy (Fly).
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// cors answers preflights and exposes the headers a browser-based MCP client
// must read (WWW-Authenticate for discovery, Mcp-Session-Id). It only runs
// after checkOrigin, so it may echo any Origin it sees.
func (g *Gateway) cors() echo.MiddlewareFunc {
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(string) (bool, error) { return true, nil },
		AllowMethods:    []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions},
		AllowHeaders: []string{
			echo.HeaderAuthorization, echo.HeaderContentType, echo.HeaderAccept,
			"Mcp-Session-Id", "MCP-Protocol-Version", "Last-Event-ID",
		},
		ExposeHeaders: []string{echo.HeaderWWWAuthenticate, "Mcp-Session-Id", "MCP-Protocol-Version", "Retry-After"},
		MaxAge:        600,
	})
}

// loopbackOnly answers only requests addressed to a loopback host, on
// every route (Config.LoopbackOnly: development mode). Its embedded
// authorization server mints a token for any user with any scope, so it
// must be reached only from this machine: behind a tunnel or a reverse
// proxy the listener is on loopback but the Host is public, and
// DEV_AUTH_ALLOW_PUBLIC=true is the operator's explicit consent to that.
func (g *Gateway) loopbackOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if loopback.HostPort(c.Request().Host) {
			return next(c)
		}
		g.cfg.Logger.Warn("development mode: request for a non-loopback host refused; set DEV_AUTH_ALLOW_PUBLIC=true to serve it (a tunnel)")
		prm.WriteError(c.Response(), http.StatusForbidden, nil, prm.ErrorBody{Error: "forbidden_host",
			ErrorDescription: "development mode answers only requests addressed to localhost; the operator can set DEV_AUTH_ALLOW_PUBLIC=true to serve this host"})
		return nil
	}
}
