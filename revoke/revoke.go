// Package revoke is the gateway's kill switch (issue 15): it applies a
// revocation of a token, a subject, a client or an email address on this
// machine at once and publishes it to every other machine through Redis,
// and it serves the two ways a revocation comes in: the admin API
// (POST /admin/revoke on the internal listener, admin.go) and OpenID
// Shared Signals events (RFC 8935 push of RFC 8417 SETs, ssf.go).
//
// A revocation is not a verdict: cached answers verified before it are no
// longer used, and the next request with such a token is introspected
// again (introspect/revocation.go). A user whose access was removed at the
// authorization server is then refused; one who is merely re-checked gets
// in after one introspection.
//
// The records live in a sharedcache.RevocationSet, which the verifier
// consults on every cache hit. With Redis, every machine's set is fed by
// pub/sub, and a machine that missed messages (restarted, partitioned)
// re-reads the records, which Redis keeps for CACHE_MAX_TTL: by then every
// answer verified before them has left every cache.
package revoke

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mcp-gateway/mcp-gateway/internal/redact"
	"github.com/mcp-gateway/mcp-gateway/internal/tokendigest"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
)

// Source says where a revocation came from.
type Source string

// The sources of revocations.
const (
	SourceAdmin Source = "admin" // POST /admin/revoke on this machine
	SourceSSF   Source = "ssf"   // an OpenID Shared Signals event pushed to this machine
	SourceRedis Source = "redis" // published by a machine (this one included) or re-read from Redis
)

// AllSources lists every Source in a stable order (a metric's label set).
func AllSources() []Source { return []Source{SourceAdmin, SourceSSF, SourceRedis} }

// Observer receives what the Revoker does, for metrics. Implementations
// must be safe for concurrent use and cheap.
type Observer interface {
	// Revocation reports one revocation received from src, of kind (one
	// of sharedcache.AllKinds), and whether it was applied: false for a
	// record already known (the echo of this machine's own publication,
	// a re-read after a reconnection).
	Revocation(src Source, kind string, applied bool)
}

// TokenIDs computes the keyed identity of a token digest, as the verifier
// does.
type TokenIDs = sharedcache.TokenIDs

// Config configures a Revoker.
type Config struct {
	// Set is where revocations are recorded; the verifier reads it.
	// Required.
	Set *sharedcache.RevocationSet
	// Store publishes revocations to the other machines and receives
	// theirs. nil: revocations apply on this machine only.
	Store *sharedcache.Store
	// IDs names tokens in token revocations. Required.
	IDs TokenIDs
	// TTL is how long Redis keeps a record for machines that missed it:
	// CACHE_MAX_TTL. Required with Store.
	TTL time.Duration
	// OnApply, if set, is called with every revocation newly applied on
	// this machine, whatever its source: the place to end what a cache
	// entry does not cover, such as open event streams of a revoked
	// token or subject. It runs on the caller's goroutine (the Redis
	// subscriber's for SourceRedis), so it must be quick and must not
	// block.
	OnApply func(sharedcache.Revocation)
	// Now is the clock (default time.Now). It must be the verifier's.
	Now func() time.Time
	// Logger receives one line per revocation applied (never a token; a
	// subject only as redact.Subject).
	Logger *slog.Logger
	// Observer receives metrics events (default: none).
	Observer Observer
}

// Revoker applies and publishes revocations. It is safe for concurrent use.
type Revoker struct {
	cfg Config

	mu          sync.Mutex
	unsubscribe func()
}

// New checks cfg (every problem at once) and returns a Revoker. Call Start
// to receive the other machines' revocations.
func New(cfg Config) (*Revoker, error) {
	var errs []error
	if cfg.Set == nil {
		errs = append(errs, errors.New("revoke: Set is required"))
	}
	if cfg.IDs == nil {
		errs = append(errs, errors.New("revoke: IDs is required"))
	}
	if cfg.Store != nil && cfg.TTL <= 0 {
		errs = append(errs, errors.New("revoke: TTL must be positive with a Store"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Revoker{cfg: cfg}, nil
}

// Start subscribes to the revocations every machine publishes (this one's
// included, which are then replays), and to the records Redis keeps, read
// now and after every reconnection. Without a Store it does nothing.
func (r *Revoker) Start() {
	if r.cfg.Store == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unsubscribe == nil {
		r.unsubscribe = r.cfg.Store.Subscribe(func(rev sharedcache.Revocation) { r.apply(SourceRedis, rev) })
	}
}

// Close stops receiving other machines' revocations. The records already
// applied stay in the Set.
func (r *Revoker) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unsubscribe != nil {
		r.unsubscribe()
		r.unsubscribe = nil
	}
}

// Distributed reports whether revocations reach other machines (a Store is
// configured).
func (r *Revoker) Distributed() bool { return r.cfg.Store != nil }

// TokenRevocation is the revocation of one token: named by the keyed ID of
// its tokendigest.Revocation (for a JWT, its signed content, whatever its
// signature), never by the token or its plain digest, so the record can
// travel through Redis. Its verdict, stored under the digest of the whole
// token, is purged with it.
func (r *Revoker) TokenRevocation(token string) sharedcache.Revocation {
	return sharedcache.Revocation{Kind: sharedcache.KindToken, Value: r.cfg.IDs.ID(tokendigest.Revocation(token)).String(),
		Purge: r.cfg.IDs.ID(sha256.Sum256([]byte(token)))}
}

// Revoke applies rev on this machine at once and publishes it to every
// machine. A zero rev.At is now.
//
// Errors: *sharedcache.InvalidError (nothing was applied), or
// *sharedcache.UnavailableError when Redis could not take it: it was
// applied here, but the other machines do not know it (the caller should
// say so, and retry: a retry is harmless).
func (r *Revoker) Revoke(ctx context.Context, src Source, rev sharedcache.Revocation) error {
	if rev.At.IsZero() {
		rev.At = r.cfg.Now()
	}
	if err := rev.Validate(); err != nil {
		return err
	}
	r.apply(src, rev)
	if r.cfg.Store == nil {
		return nil
	}
	if err := r.cfg.Store.Revoke(ctx, rev, r.cfg.TTL); err != nil {
		r.cfg.Logger.Warn("revocation applied on this machine only: Redis did not take it", "source", string(src),
			"kind", rev.Kind, "err", err)
		return err
	}
	return nil
}

// apply records rev in the Set and reports it.
func (r *Revoker) apply(src Source, rev sharedcache.Revocation) {
	applied := r.cfg.Set.Apply(rev)
	if r.cfg.Observer != nil {
		r.cfg.Observer.Revocation(src, rev.Kind, applied)
	}
	if !applied {
		return
	}
	r.cfg.Logger.Info("revocation applied: cached answers verified before it are checked again",
		"source", string(src), "kind", rev.Kind, "who", describe(rev), "at", rev.At)
	if r.cfg.OnApply != nil {
		r.cfg.OnApply(rev)
	}
}

// describe names a revocation's target for a log line without revealing
// it: a token by the start of its keyed ID, a person by redact.Subject.
func describe(rev sharedcache.Revocation) string {
	switch rev.Kind {
	case sharedcache.KindToken:
		return rev.Value[:min(16, len(rev.Value))]
	case sharedcache.KindClientID:
		return rev.Value // a client id names an application, not a person
	default:
		return redact.Subject(rev.Value)
	}
}
