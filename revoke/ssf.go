package revoke

// OpenID Shared Signals: a CAEP or RISC event that says a subject's
// sessions or credentials can no longer be trusted (package ssf decides
// which) revokes that subject's cached answers, as the admin API's
// {"sub": ...} or {"email": ...} does.

import (
	"context"
	"errors"

	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
	"github.com/mcp-gateway/mcp-gateway/ssf"
)

// SSFRevocation maps a subject identifier (RFC 9493 §3.2) to the
// revocation that names the same principal in the authorization server's
// tokens, or ok false when none can:
//
//   - iss_sub: its "sub" is a token's "sub" only when its "iss" is the
//     authorization server's issuer (a subject of another issuer, even the
//     transmitter's, may be someone else with the same identifier);
//   - opaque: the identifier both parties agreed on, the token's "sub";
//   - email: the token's "email" claim, compared case-insensitively.
func SSFRevocation(s ssf.Subject, asIssuer string) (sharedcache.Revocation, bool) {
	switch s.Format {
	case ssf.FormatIssSub:
		if asIssuer == "" || !urlrule.SameIssuer(s.Iss, asIssuer) {
			return sharedcache.Revocation{}, false
		}
		return sharedcache.Revocation{Kind: sharedcache.KindSub, Value: s.Sub}, true
	case ssf.FormatOpaque:
		return sharedcache.Revocation{Kind: sharedcache.KindSub, Value: s.ID}, true
	case ssf.FormatEmail:
		return sharedcache.Revocation{Kind: sharedcache.KindEmail, Value: s.Email}, true
	}
	return sharedcache.Revocation{}, false
}

// OnSSF is an ssf.Config.OnRevocation that revokes the event's subject on
// every machine. A subject it cannot match (another issuer's iss_sub) is
// logged and acknowledged: retrying would not change it. When Redis does
// not take the revocation it has applied on this machine and returns the
// error, so the push is answered 503 and the transmitter delivers the SET
// again (a repeat is harmless).
func (r *Revoker) OnSSF(asIssuer string) func(context.Context, ssf.Revocation) error {
	return func(ctx context.Context, ev ssf.Revocation) error {
		rev, ok := SSFRevocation(ev.Subject, asIssuer)
		if !ok {
			r.cfg.Logger.Info("ssf: event acknowledged without a revocation: its subject is not one of the authorization server's",
				"jti", ev.JTI, "event", ev.Event, "format", ev.Subject.Format)
			return nil
		}
		rev.At = ev.At
		err := r.Revoke(ctx, SourceSSF, rev)
		var invalid *sharedcache.InvalidError
		if errors.As(err, &invalid) {
			r.cfg.Logger.Info("ssf: event acknowledged without a revocation", "jti", ev.JTI, "event", ev.Event, "why", invalid.Reason)
			return nil
		}
		return err
	}
}
