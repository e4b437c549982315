// Package ssf receives OpenID Shared Signals: Security Event Tokens (SETs,
// RFC 8417) pushed over HTTP by a transmitter (RFC 8935), and turns the
// CAEP and RISC events that mean "stop trusting this user's sessions" into
// revocations the gateway applies to its token cache.
//
// A Receiver is configured with one transmitter (its issuer, and its keys
// from its OpenID SSF 1.0 metadata or an explicit JWKS URL) and the
// audiences this receiver answers to. Its ServeHTTP is the push endpoint;
// Verify and Receive do the same work without HTTP. Everything an outsider
// sends is bounded and checked, and a SET that fails any check changes
// nothing: no revocation, no record of its jti.
//
// What a revocation means is the caller's: OnRevocation receives each one
// and the gateway refuses cached answers for that subject from before
// Revocation.At, so the subject's next request is checked with the
// authorization server again.
package ssf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxAge          = 5 * time.Minute
	DefaultClockSkew       = 30 * time.Second
	DefaultMaxBodyBytes    = 64 << 10
	DefaultMaxEvents       = 8
	DefaultReplayCapacity  = 10000
	DefaultTimeout         = 5 * time.Second
	DefaultRefetchInterval = 30 * time.Second
	DefaultKeyMaxAge       = time.Hour
)

// Config configures a Receiver. Issuer, Audience and OnRevocation are
// required; every other zero value selects the default named beside it.
type Config struct {
	// Issuer is the transmitter's issuer identifier (SSF_ISSUER): the
	// exact "iss" of every SET (RFC 8417 §2.2, SSF 1.0 §4.1.6), and where
	// its metadata is discovered (SSF 1.0 §7.2). https, or http to a
	// loopback host.
	Issuer string
	// JWKSURL is the transmitter's JWK Set (SSF_JWKS_URL). Empty: the
	// jwks_uri of the transmitter's metadata at
	// /.well-known/ssf-configuration (or, for RISC transmitters,
	// /.well-known/risc-configuration). https, or http to a loopback host.
	JWKSURL string
	// Audience lists the "aud" values that name this receiver (typically
	// the gateway's resource URL); a SET must carry at least one.
	Audience []string
	// MaxAge is the oldest "iat" accepted (default 5m), and how long a jti
	// is remembered against replays. A SET older than the gateway's cache
	// lifetime no longer changes anything there, so this need not be long.
	MaxAge time.Duration
	// ClockSkew is how far in the future "iat" (and "nbf") may be, and how
	// long past "exp" a SET is still accepted (default 30s).
	ClockSkew time.Duration
	// Algorithms are the JWS "alg" values accepted (default
	// DefaultAlgorithms()). Only asymmetric algorithms may be listed.
	Algorithms []string
	// AcceptUntyped accepts SETs without a "typ" header, as RISC
	// transmitters that predate SSF 1.0's explicit typing send. Off by
	// default: SSF 1.0 §4.1.1 requires typ secevent+jwt, which is what
	// tells a SET from other JWTs the same keys sign. A "typ" other than
	// secevent+jwt is refused either way.
	AcceptUntyped bool
	// AuthorizationHeader, if set, is the exact Authorization header value
	// the transmitter must send with every push (the authorization_header
	// of SSF 1.0 §6.1.1); it is compared in constant time and a request
	// without it is refused before its body is read.
	AuthorizationHeader string
	// OnRevocation is called once for each subject of each revoking event
	// of an accepted SET, in order, before the push is answered. It must
	// be idempotent: a SET whose OnRevocation failed is answered 503 and
	// its jti forgotten, so the transmitter delivers it again and the
	// revocations before the failure are applied twice.
	OnRevocation func(context.Context, Revocation) error
	// HTTPClient fetches the transmitter's metadata and keys (default: a
	// new client). Redirects are never followed, whichever client is given.
	HTTPClient *http.Client
	// Timeout bounds one fetch of the metadata plus keys (default 5s).
	Timeout time.Duration
	// RefetchInterval is the shortest time between two fetches of the
	// keys caused by SETs (an unknown kid, old keys) (default 30s).
	RefetchInterval time.Duration
	// KeyMaxAge is how long fetched keys are used before they are fetched
	// again on the next SET, so a key the transmitter withdrew stops being
	// accepted (default 1h); the JWKS answer's Cache-Control max-age may
	// shorten it, down to RefetchInterval. If that fetch fails, the old
	// keys stay in use.
	KeyMaxAge time.Duration
	// MaxBodyBytes bounds a push request's body (default 64 KiB).
	MaxBodyBytes int64
	// MaxEvents bounds the events in one SET (default 8; SSF 1.0 §4.2.1
	// expects one).
	MaxEvents int
	// ReplayCapacity bounds the jti values remembered (default 10000).
	// When it holds that many live ones, new SETs are answered 503 until
	// the oldest expires.
	ReplayCapacity int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Observer receives the outcome of every push (default: none).
	Observer Observer
	// Logger receives one line per refused SET and per event acknowledged
	// without a revocation (default: discard). Nothing of a SET is logged
	// but its jti and event types.
	Logger *slog.Logger
}

// Revocation is what an accepted event asks of the gateway: stop reusing
// what it cached about Subject before At, and ask the authorization server
// again.
type Revocation struct {
	// Subject identifies the principal (RFC 9493 §3.2).
	Subject Subject
	// Event is the event type URI (EventSessionRevoked ...).
	Event string
	// At is the receiver's clock when the SET was accepted. It is the
	// receiver's own time, not the transmitter's, because it is compared
	// with the receiver's cache entries: an entry cached before At may
	// predate the event whatever the two clocks say.
	At time.Time
	// EventTime is when the transmitter says the event happened (CAEP
	// event_timestamp, else RFC 8417 "toe", else "iat"). For logs only.
	EventTime time.Time
	// JTI is the SET's identifier, for logs and audit.
	JTI string
}

// Receiver receives SETs from one transmitter. It is safe for concurrent
// use.
type Receiver struct {
	cfg        Config
	algs       []jose.SignatureAlgorithm
	keys       *keySet
	replay     *replayCache
	ownsClient bool
	now        func() time.Time
	log        *slog.Logger
}

// New checks cfg, reporting every problem at once, and returns a Receiver.
// It does no I/O: the transmitter's keys are fetched on the first SET (or
// by Refresh), so a transmitter that is down does not stop the gateway
// from starting.
func New(cfg Config) (*Receiver, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("ssf: Issuer is required"))
	} else if _, err := urlrule.Identifier(cfg.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("ssf: Issuer: %w", err))
	}
	if cfg.JWKSURL != "" {
		if _, err := urlrule.Server(cfg.JWKSURL); err != nil {
			errs = append(errs, fmt.Errorf("ssf: JWKSURL: %w", err))
		}
	}
	if len(cfg.Audience) == 0 || slices.Contains(cfg.Audience, "") {
		errs = append(errs, errors.New("ssf: Audience must list at least one non-empty value"))
	}
	if cfg.OnRevocation == nil {
		errs = append(errs, errors.New("ssf: OnRevocation is required (a receiver that revokes nothing would acknowledge revocations it ignores)"))
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms()
	}
	for _, a := range cfg.Algorithms {
		if !asymmetricAlgorithm(a) {
			errs = append(errs, fmt.Errorf("ssf: algorithm %q is not allowed; use asymmetric ones among %s", a, strings.Join(DefaultAlgorithms(), ", ")))
		}
	}
	for name, d := range map[string]time.Duration{
		"MaxAge": cfg.MaxAge, "ClockSkew": cfg.ClockSkew, "Timeout": cfg.Timeout,
		"RefetchInterval": cfg.RefetchInterval, "KeyMaxAge": cfg.KeyMaxAge,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("ssf: %s must not be negative", name))
		}
	}
	if cfg.MaxBodyBytes < 0 || cfg.MaxEvents < 0 || cfg.ReplayCapacity < 0 {
		errs = append(errs, errors.New("ssf: MaxBodyBytes, MaxEvents and ReplayCapacity must not be negative"))
	}
	if strings.ContainsAny(cfg.AuthorizationHeader, "\r\n") {
		errs = append(errs, errors.New("ssf: AuthorizationHeader must be a single header value"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.Audience = slices.Clone(cfg.Audience)
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	setDefault(&cfg.MaxAge, DefaultMaxAge)
	setDefault(&cfg.ClockSkew, DefaultClockSkew)
	setDefault(&cfg.Timeout, DefaultTimeout)
	setDefault(&cfg.RefetchInterval, DefaultRefetchInterval)
	setDefault(&cfg.KeyMaxAge, DefaultKeyMaxAge)
	setDefault(&cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&cfg.MaxEvents, DefaultMaxEvents)
	setDefault(&cfg.ReplayCapacity, DefaultReplayCapacity)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{cfg: cfg, now: cfg.Now, log: cfg.Logger}
	for _, a := range cfg.Algorithms {
		r.algs = append(r.algs, jose.SignatureAlgorithm(a))
	}
	var client *http.Client
	if cfg.HTTPClient == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		r.ownsClient = true
	} else {
		c := *cfg.HTTPClient // a copy, so its redirect policy can be ours
		client = &c
	}
	client.CheckRedirect = urlrule.NoRedirects
	keys, err := newKeySet(cfg, client)
	if err != nil {
		return nil, err
	}
	r.keys = keys
	replay, err := newReplayCache(cfg.ReplayCapacity, cfg.MaxAge+cfg.ClockSkew)
	if err != nil {
		return nil, err
	}
	r.replay = replay
	return r, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Verify checks a SET exactly as a push would, including whether its jti
// was already accepted, and returns the revocations it calls for. It
// records nothing and calls nothing: the same SET verifies again, and
// OnRevocation is not called. For tests and the configuration doctor.
//
// Errors: *RefusedError (the SET is not acceptable) or *UnavailableError
// (its keys could not be fetched now).
func (r *Receiver) Verify(ctx context.Context, set []byte) ([]Revocation, error) {
	v, err := r.verify(ctx, set)
	if err != nil {
		return nil, err
	}
	now := r.now()
	if r.replay.seenAt(v.JTI, now) {
		return nil, refused(CodeInvalidRequest, ReasonReplay, `the SET's "jti" was already received`)
	}
	return r.revocations(v, now), nil
}

// Receive processes one SET as the push endpoint does: it verifies it,
// records its jti, and calls OnRevocation for each revocation it calls for.
// It returns the revocations applied.
//
// Errors: *RefusedError (nothing changed; answer 400) or *UnavailableError
// (nothing recorded; the transmitter should retry). When OnRevocation
// fails, the revocations before the failure have been applied, the jti is
// forgotten so a retry is processed in full, and the error is an
// *UnavailableError wrapping OnRevocation's.
func (r *Receiver) Receive(ctx context.Context, set []byte) ([]Revocation, error) {
	v, err := r.verify(ctx, set)
	if err != nil {
		return nil, err
	}
	now := r.now()
	if err := r.replay.reserve(v.JTI, now); err != nil {
		var full *errFull
		if errors.As(err, &full) {
			r.log.Warn("ssf: replay cache full; asking the transmitter to retry", "jti", v.JTI)
			return nil, &UnavailableError{Reason: ReasonReplayFull, RetryAfter: full.wait, Err: err}
		}
		r.log.Info("ssf: SET refused", "reason", ReasonReplay, "jti", v.JTI)
		return nil, refused(CodeInvalidRequest, ReasonReplay, `the SET's "jti" was already received`)
	}
	revs := r.revocations(v, now)
	for _, rev := range revs {
		if err := r.cfg.OnRevocation(ctx, rev); err != nil {
			r.replay.release(v.JTI)
			r.log.Error("ssf: applying a revocation failed; asking the transmitter to retry", "jti", v.JTI, "event", rev.Event, "err", err)
			return nil, &UnavailableError{Reason: ReasonRevocationErr, RetryAfter: time.Second, Err: err}
		}
	}
	for _, ev := range v.Events {
		switch {
		case !ev.Revokes:
			r.log.Info("ssf: event acknowledged; its type does not revoke", "jti", v.JTI, "event", ev.Type)
		case ev.NotActionable != "":
			r.log.Info("ssf: revoking event acknowledged without a revocation", "jti", v.JTI, "event", ev.Type, "why", ev.NotActionable)
		}
	}
	if len(revs) > 0 {
		r.log.Info("ssf: SET accepted", "jti", v.JTI, "revocations", len(revs))
	}
	return revs, nil
}

// verify runs verifySET with the body bound and logs a refusal.
func (r *Receiver) verify(ctx context.Context, set []byte) (*verifiedSET, error) {
	if int64(len(set)) > r.cfg.MaxBodyBytes {
		return nil, refused(CodeInvalidRequest, ReasonTooLarge, "the SET is larger than this receiver accepts")
	}
	v, err := r.verifySET(ctx, set)
	if err != nil {
		var ref *RefusedError
		var un *UnavailableError
		switch {
		case errors.As(err, &ref):
			r.log.Info("ssf: SET refused", "code", ref.Code, "reason", ref.Reason)
		case errors.As(err, &un):
			r.log.Warn("ssf: SET not processed now", "reason", un.Reason, "err", un.Err)
		}
		return nil, err
	}
	return v, nil
}

func (r *Receiver) revocations(v *verifiedSET, now time.Time) []Revocation {
	var revs []Revocation
	for _, ev := range v.Events {
		if !ev.Revokes {
			continue
		}
		when := ev.Time
		if when.IsZero() {
			when = v.Toe
		}
		if when.IsZero() {
			when = v.IssuedAt
		}
		for _, s := range ev.Subjects {
			revs = append(revs, Revocation{Subject: s, Event: ev.Type, At: now, EventTime: when, JTI: v.JTI})
		}
	}
	return revs
}

// Refresh fetches the transmitter's metadata (unless JWKSURL is set) and
// keys now, whatever the refetch interval, and describes them. The
// configuration doctor uses it to prove they are reachable and usable;
// main may call it at start-up to warm the keys.
func (r *Receiver) Refresh(ctx context.Context) (KeyStatus, error) {
	if err := r.keys.keys.Refresh(ctx); err != nil {
		return KeyStatus{}, err
	}
	return r.keys.status(), nil
}

// Close releases the idle connections of the HTTP client the Receiver made
// for itself (none if Config.HTTPClient was given). The Receiver keeps
// working afterwards. (Its jwks.KeySet is never started, so it has no
// goroutine to stop.)
func (r *Receiver) Close() {
	if r.ownsClient {
		r.keys.client.CloseIdleConnections()
	}
}
