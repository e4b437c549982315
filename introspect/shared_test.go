package introspect

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
	"github.com/mcp-gateway/mcp-gateway/sharedcache"
	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
)

var testKeySecret = []byte("introspect-tests-shared-key-secret")

// sharedObs counts the SharedObserver events on top of countingObserver.
type sharedObs struct {
	*countingObserver
	shared         atomic.Int64
	revokedLocal   atomic.Int64
	revokedShared  atomic.Int64
	introspections atomic.Int64
}

func (o *sharedObs) SharedAnswer() { o.shared.Add(1) }
func (o *sharedObs) RevokedAnswer(t CacheTier) {
	if t == TierLocal {
		o.revokedLocal.Add(1)
	} else {
		o.revokedShared.Add(1)
	}
}
func (o *sharedObs) IntrospectionCall(outcome Outcome, d time.Duration) {
	o.introspections.Add(1)
	o.countingObserver.IntrospectionCall(outcome, d)
}

// machine is one gateway's verifier, with its own Store on the shared
// Redis and its own revocation set fed by the bus, as main wires them.
type machine struct {
	v     *Verifier
	store *sharedcache.Store
	revs  *sharedcache.RevocationSet
	obs   *sharedObs
}

// newMachine builds a machine on the real clock (revocations compare the
// verifier's clock with the time this machine heard of them).
func newMachine(t testing.TB, as *introspecttest.Server, redisURL string, mods ...func(*Config, *sharedcache.Config)) *machine {
	t.Helper()
	sc := sharedcache.Config{URL: redisURL, KeySecret: testKeySecret, Timeout: 2 * time.Second}
	cfg := Config{
		Endpoint: as.IntrospectionURL(), Issuer: as.URL,
		ClientID: as.ClientID, ClientSecret: as.ClientSecret,
		Audiences: []string{testResource}, Timeout: 2 * time.Second,
		CacheMaxTTL: time.Minute,
	}
	for _, m := range mods {
		m(&cfg, &sc)
	}
	m := &machine{obs: &sharedObs{countingObserver: newCountingObserver()}}
	if sc.URL != "" {
		st, err := sharedcache.New(context.Background(), sc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		m.store = st
	}
	m.revs = sharedcache.NewRevocationSet(cfg.CacheMaxTTL, 0, cfg.Now)
	var ids TokenIDs
	if m.store != nil {
		ids = m.store
		t.Cleanup(m.store.Subscribe(m.revs.Add))
		// Redis values are used only once the revocation records are
		// read (RevocationsSynced).
		deadline := time.Now().Add(5 * time.Second)
		for !m.store.RevocationsSynced() && m.store.Healthy() {
			if time.Now().After(deadline) {
				t.Fatal("revocation records not read within 5s")
			}
			time.Sleep(time.Millisecond)
		}
	} else {
		i, err := sharedcache.NewIDs(testKeySecret)
		if err != nil {
			t.Fatal(err)
		}
		ids = i
	}
	cfg.Observer = m.obs
	cfg.Shared = SharedTier{Store: m.store, Revocations: m.revs, IDs: ids}
	v, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	m.v = v
	return m
}

// revoke publishes r from m and applies it locally, as the admin API does.
func (m *machine) revoke(t testing.TB, r sharedcache.Revocation) {
	t.Helper()
	if r.At.IsZero() {
		r.At = time.Now()
	}
	m.revs.Add(r)
	if m.store != nil {
		if err := m.store.Revoke(context.Background(), r, time.Minute); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
	}
}

func tokenRevocation(ids TokenIDs, tok string) sharedcache.Revocation {
	return sharedcache.Revocation{Kind: sharedcache.KindToken, Value: ids.ID(sha256.Sum256([]byte(tok))).String()}
}

// waitGeneration polls (across a real Redis) until m has heard of n
// revocations.
func (m *machine) waitGeneration(t testing.TB, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for m.revs.Generation() < n {
		if time.Now().After(deadline) {
			t.Fatalf("revocation not received within 5s (generation %d, want %d)", m.revs.Generation(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A verdict reached on one machine is used by the others without an
// introspection, accepted or refused, and with exactly the TokenInfo the
// first machine built.
func TestSharedTierSharesVerdicts(t *testing.T) {
	srv := redistest.Start(t)
	as := introspecttest.New(t)
	a := newMachine(t, as, srv.URL())
	b := newMachine(t, as, srv.URL())
	ctx := context.Background()

	good := as.Issue("alice", []string{"op:add", "op:div"}, testResource, time.Hour)
	as.AddToken("with-email", map[string]any{"sub": "bob", "email": "bob@example.com", "username": "bobby",
		"client_id": "app-1", "aud": []string{testResource, "https://other.example"}, "scope": "op",
		"exp": time.Now().Add(time.Hour).Unix()})
	for _, tok := range []string{good, "with-email"} {
		want, err := a.v.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("A: %v", err)
		}
		calls := as.Calls()
		got, err := b.v.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("B: %v", err)
		}
		if as.Calls() != calls {
			t.Errorf("B introspected a token A had verified")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("B's TokenInfo differs:\n got %+v\nwant %+v", got, want)
		}
	}
	if b.obs.shared.Load() != 2 {
		t.Errorf("shared answers = %d, want 2", b.obs.shared.Load())
	}

	// A refusal is shared too (negative caching), with its reason.
	for _, tc := range []struct {
		tok    string
		reason accesstoken.Reason
	}{
		{"unknown-token", accesstoken.ReasonInactive},
		{as.Issue("carol", nil, "https://elsewhere.example/api", time.Hour), accesstoken.ReasonAudience},
	} {
		if _, err := a.v.Verify(ctx, tc.tok); reasonOf(err) != tc.reason {
			t.Fatalf("A: %v, want %s", err, tc.reason)
		}
		calls := as.Calls()
		if _, err := b.v.Verify(ctx, tc.tok); reasonOf(err) != tc.reason {
			t.Fatalf("B: %v, want %s", err, tc.reason)
		}
		if as.Calls() != calls {
			t.Errorf("B introspected a token A had refused (%s)", tc.reason)
		}
	}
}

// Nothing in Redis skips the checks: expiry and the audience are decided
// again, with the reader's clock and the reader's configuration.
func TestSharedTierRechecksOnUse(t *testing.T) {
	srv := redistest.Start(t)
	as := introspecttest.New(t)
	a := newMachine(t, as, srv.URL())
	ctx := context.Background()
	tok := as.Issue("alice", []string{"op:add"}, testResource, 10*time.Minute)
	if _, err := a.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}

	// A machine whose clock is past the token's exp refuses it.
	late := newMachine(t, as, srv.URL(), func(c *Config, _ *sharedcache.Config) {
		c.Now = func() time.Time { return time.Now().Add(11 * time.Minute) }
	})
	calls := as.Calls()
	if _, err := late.v.Verify(ctx, tok); reasonOf(err) != accesstoken.ReasonExpired {
		t.Errorf("past exp: %v, want expired", err)
	}
	// A machine serving another resource refuses it.
	other := newMachine(t, as, srv.URL(), func(c *Config, _ *sharedcache.Config) {
		c.Audiences = []string{"https://another.example/mcp"}
	})
	if _, err := other.v.Verify(ctx, tok); reasonOf(err) != accesstoken.ReasonAudience {
		t.Errorf("other audience: %v, want audience", err)
	}
	if as.Calls() != calls {
		t.Errorf("the re-checks introspected (%d calls)", as.Calls()-calls)
	}
}

// A burst of requests with one new token spread over three machines costs
// one introspection: one machine wins the lock, the others wait for its
// answer.
func TestSharedTierCoalescesAcrossMachines(t *testing.T) {
	srv := redistest.Start(t)
	as := introspecttest.New(t)
	as.SetLatency(100 * time.Millisecond)
	ms := []*machine{newMachine(t, as, srv.URL()), newMachine(t, as, srv.URL()), newMachine(t, as, srv.URL())}
	ctx := context.Background()
	for round := range 3 {
		tok := as.Issue("burst", []string{"op"}, testResource, time.Hour)
		before := as.Calls()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := range 150 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := ms[i%3].v.Verify(ctx, tok); err != nil {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		if failed.Load() != 0 || as.Calls()-before != 1 {
			t.Fatalf("round %d: %d failures, %d introspections, want 0 and 1", round, failed.Load(), as.Calls()-before)
		}
	}
}

// Revocations reach every machine and apply to every tier: an answer
// verified before a revocation is not used (the token is introspected
// again), one verified after it is.
func TestSharedTierRevocations(t *testing.T) {
	srv := redistest.Start(t)
	as := introspecttest.New(t)
	a := newMachine(t, as, srv.URL())
	b := newMachine(t, as, srv.URL())
	ctx := context.Background()
	gen := uint64(0)

	for _, tc := range []struct {
		name   string
		revoke func(tok string) sharedcache.Revocation
	}{
		{"token", func(tok string) sharedcache.Revocation { return tokenRevocation(a.store, tok) }},
		{"sub", func(string) sharedcache.Revocation {
			return sharedcache.Revocation{Kind: sharedcache.KindSub, Value: "sub-user"}
		}},
		{"client_id", func(string) sharedcache.Revocation {
			return sharedcache.Revocation{Kind: sharedcache.KindClientID, Value: "client-app"}
		}},
		{"email", func(string) sharedcache.Revocation {
			return sharedcache.Revocation{Kind: sharedcache.KindEmail, Value: "Email-User@Example.com"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := "tok-" + tc.name
			client := "client-other"
			if tc.name == "client_id" {
				client = "client-app"
			}
			as.AddToken(tok, map[string]any{"sub": tc.name + "-user", "client_id": client, "email": "email-user@example.com",
				"aud": testResource, "scope": "op", "exp": time.Now().Add(time.Hour).Unix()})
			for _, m := range []*machine{a, b} {
				if _, err := m.v.Verify(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			// A third machine that has not seen the token yet finds A's
			// copy in Redis after the revocation: it predates it too.
			c := newMachine(t, as, srv.URL())
			c.waitGeneration(t, gen) // the records of the earlier cases
			a.revoke(t, tc.revoke(tok))
			gen++
			b.waitGeneration(t, gen)
			c.waitGeneration(t, gen)

			// Still good at the authorization server: each machine
			// re-checks it at most once (the first to do so shares its
			// new answer), then uses it.
			total := as.Calls()
			for i, m := range []*machine{c, a, b} {
				calls := as.Calls()
				for range 3 {
					if _, err := m.v.Verify(ctx, tok); err != nil {
						t.Fatalf("re-check: %v", err)
					}
				}
				if n := as.Calls() - calls; n > 1 || (i == 0 && n != 1) {
					t.Errorf("machine %d: %d introspections after the revocation", i, n)
				}
			}
			if as.Calls() == total {
				t.Error("nobody re-checked the token")
			}
			if tc.name != "token" && c.obs.revokedShared.Load() != 1 {
				t.Errorf("the third machine used the shared copy that predates the revocation")
			}

			// Revoked at the authorization server too: refused at once
			// everywhere.
			as.Revoke(tok)
			a.revoke(t, tc.revoke(tok))
			gen++
			b.waitGeneration(t, gen)
			c.waitGeneration(t, gen)
			for _, m := range []*machine{b, c, a} {
				if _, err := m.v.Verify(ctx, tok); reasonOf(err) != accesstoken.ReasonInactive {
					t.Errorf("after revocation at the AS: %v, want inactive", err)
				}
			}
		})
	}
}

// Without Redis, revocations still apply on the one machine.
func TestRevocationsWithoutRedis(t *testing.T) {
	as := introspecttest.New(t)
	m := newMachine(t, as, "")
	ctx := context.Background()
	tok := as.Issue("alice", []string{"op"}, testResource, time.Hour)
	other := as.Issue("bob", []string{"op"}, testResource, time.Hour)
	for _, k := range []string{tok, other} {
		if _, err := m.v.Verify(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	ids, _ := sharedcache.NewIDs(testKeySecret)
	as.Revoke(tok)
	m.revoke(t, tokenRevocation(ids, tok))
	if _, err := m.v.Verify(ctx, tok); reasonOf(err) != accesstoken.ReasonInactive {
		t.Fatalf("revoked token: %v, want inactive", err)
	}
	calls := as.Calls()
	if _, err := m.v.Verify(ctx, other); err != nil || as.Calls() != calls {
		t.Fatalf("another token was affected: %v, %d calls", err, as.Calls()-calls)
	}
	if m.obs.revokedLocal.Load() != 1 {
		t.Errorf("revoked local answers = %d, want 1", m.obs.revokedLocal.Load())
	}
}

// A request made after a revocation does not share an introspection that
// started before it: that answer may predate the revocation.
func TestRevocationStartsANewFlight(t *testing.T) {
	as := introspecttest.New(t)
	m := newMachine(t, as, "")
	release := holdAnswers(as)
	ctx := context.Background()
	tok := as.Issue("alice", []string{"op"}, testResource, time.Hour)
	first := make(chan error, 1)
	go func() { _, err := m.v.Verify(ctx, tok); first <- err }()
	waitCalls(t, as, 1)
	m.revoke(t, sharedcache.Revocation{Kind: sharedcache.KindSub, Value: "alice"})
	second := make(chan error, 1)
	go func() { _, err := m.v.Verify(ctx, tok); second <- err }()
	waitCalls(t, as, 2)
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
}

func waitCalls(t *testing.T, as *introspecttest.Server, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for as.Calls() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d introspection calls, want %d", as.Calls(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Redis failing (down, or slower than its timeout) never fails a request
// and costs a miss at most about one REDIS_TIMEOUT; after repeated
// failures the circuit skips Redis entirely.
func TestSharedTierFailures(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewProxy(t, srv.Addr)
	as := introspecttest.New(t)
	// Wider than the 50 ms default so that "one timeout" and "two" are
	// told apart on a loaded machine.
	const redisTimeout = 100 * time.Millisecond
	m := newMachine(t, as, "redis://"+proxy.Addr, func(_ *Config, sc *sharedcache.Config) { sc.Timeout = redisTimeout })
	ctx := context.Background()

	measure := func(what string) time.Duration {
		t.Helper()
		var worst time.Duration
		for range 5 {
			tok := as.Issue("u", []string{"op"}, testResource, time.Hour)
			start := time.Now()
			if _, err := m.v.Verify(ctx, tok); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			worst = max(worst, time.Since(start))
		}
		return worst
	}
	healthy := measure("healthy")

	proxy.SetDelay(500 * time.Millisecond)
	slow := measure("slow Redis")
	// One Redis call on the path (Fetch), bounded by its timeout; the
	// writes are off the path. 60 ms of slack for a loaded machine.
	if limit := healthy + redisTimeout + 60*time.Millisecond; slow > limit {
		t.Errorf("slow Redis: a miss took %v, want at most %v", slow, limit)
	}
	proxy.SetDelay(0)
	proxy.Cut()
	down := measure("Redis cut")
	if limit := healthy + redisTimeout + 60*time.Millisecond; down > limit {
		t.Errorf("Redis cut: a miss took %v, want at most %v", down, limit)
	}
	if m.store.Healthy() {
		t.Error("the circuit did not open")
	}
	proxy.Heal()
}

// The value written to Redis holds claims and a reason, never the token;
// decodeVerdict refuses what no machine would write.
func TestVerdictEncoding(t *testing.T) {
	as := introspecttest.New(t)
	v, _ := newTestVerifier(t, as)
	info := &auth.TokenInfo{Scopes: []string{"op:add"}, UserID: "alice", Expiration: time.Unix(2_000_000_000, 0).UTC(),
		Extra: map[string]any{"sub": "alice", "client_id": "c", "email": "a@example.com", "aud": []string{testResource}}}
	started := v.cfg.Now()
	b, ttl := v.encodeVerdict(info, nil, started)
	if b == nil || ttl != v.cfg.CacheMaxTTL {
		t.Fatalf("accepted: %q %v", b, ttl)
	}
	vd, ok := decodeVerdict(b)
	if !ok {
		t.Fatalf("decode %s", b)
	}
	if got := infoOf(vd.claims(), v.known); !reflect.DeepEqual(got, info) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, info)
	}
	if b, _ := v.encodeVerdict(nil, &accesstoken.InvalidError{Reason: accesstoken.ReasonInactive}, started); b == nil {
		t.Error("a refusal is not shared")
	}
	for _, err := range []error{&UnavailableError{}, &ClientAuthError{}, &RateLimitError{}, errors.New("x")} {
		if b, _ := v.encodeVerdict(nil, err, started); b != nil {
			t.Errorf("%T shared as a verdict", err)
		}
	}
	for _, bad := range []string{`{}`, `{"at":1,"r":"because"}`, `{"at":1,"scp":["a b"]}`, `{"at":-1}`, `{"at":1,"exp":-5}`, `[`} {
		if _, ok := decodeVerdict([]byte(bad)); ok {
			t.Errorf("decoded %s", bad)
		}
	}
}

func FuzzDecodeVerdict(f *testing.F) {
	f.Add([]byte(`{"at":1700000000000000000,"sub":"alice","scp":["op:add"],"aud":["https://mcp.example.com/mcp"],"ha":true,"exp":1900000000}`))
	f.Add([]byte(`{"at":1700000000000000000,"r":"inactive"}`))
	f.Add([]byte(`{"at":1,"r":"expired","d":"x"}`))
	f.Add([]byte(`null`))
	known := newInterner(nil, []string{testResource})
	f.Fuzz(func(t *testing.T, b []byte) {
		vd, ok := decodeVerdict(b)
		if !ok {
			return
		}
		if vd.At <= 0 {
			t.Fatalf("accepted at=%d", vd.At)
		}
		if vd.Reason == "" {
			ti := infoOf(vd.claims(), known)
			if ti.Scopes == nil || ti.Extra == nil {
				t.Fatal("incomplete TokenInfo")
			}
		}
	})
}

// A machine whose clock runs ahead stamps its answers later than they
// were verified; another machine must not take such an answer, verified
// before a revocation, for one verified after it. Up to CLOCK_SKEW is
// tolerated.
func TestSharedTierClockAhead(t *testing.T) {
	srv := redistest.Start(t)
	as := introspecttest.New(t)
	ahead := newMachine(t, as, srv.URL(), func(c *Config, sc *sharedcache.Config) {
		c.Now = func() time.Time { return time.Now().Add(10 * time.Second) }
		sc.Now = c.Now
	})
	b := newMachine(t, as, srv.URL(), func(c *Config, _ *sharedcache.Config) { c.ClockSkew = 30 * time.Second })
	ctx := context.Background()
	tok := as.Issue("skewed", []string{"op"}, testResource, time.Hour)
	if _, err := ahead.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	b.revoke(t, sharedcache.Revocation{Kind: sharedcache.KindSub, Value: "skewed"})
	calls := as.Calls()
	if _, err := b.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if as.Calls() != calls+1 {
		t.Fatalf("the answer stamped by a clock running ahead was used after the revocation")
	}
}

// A JWT verified locally is judged by its "iat" against revocations: one
// issued before a revocation of its subject is refused (JWT-only mode:
// nobody else can be asked) or introspected (when introspection is
// configured), however often it is verified again; one issued after it is
// accepted.
func TestRevocationOfLocalJWTs(t *testing.T) {
	for _, creds := range []bool{false, true} {
		t.Run(map[bool]string{false: "jwt only", true: "auto with introspection"}[creds], func(t *testing.T) {
			as := newJWTAS(t)
			var revs *sharedcache.RevocationSet
			v, clk, _ := newJWTVerifier(t, as, creds, func(c *Config) {
				revs = sharedcache.NewRevocationSet(time.Minute, 0, c.Now)
				ids, _ := sharedcache.NewIDs(testKeySecret)
				c.Shared = SharedTier{Revocations: revs, IDs: ids}
			})
			t0 := clk.Now()
			claims := as.jwt.Claims("alice", []string{"op"}, testResource, time.Hour)
			claims["iat"] = t0.Add(-10 * time.Second).Unix()
			old := as.jwt.Token(claims)
			if _, err := v.Verify(t.Context(), old); err != nil {
				t.Fatal(err)
			}
			revs.Add(sharedcache.Revocation{Kind: sharedcache.KindSub, Value: "alice", At: t0})
			calls := as.Calls()
			for range 2 {
				_, err := v.Verify(t.Context(), old)
				switch {
				case !creds && reasonOf(err) != accesstoken.ReasonInactive:
					t.Fatalf("a JWT issued before the revocation: %v, want refused", err)
				case creds && reasonOf(err) != accesstoken.ReasonInactive:
					// The authorization server does not know it: inactive.
					t.Fatalf("a JWT issued before the revocation, introspected: %v, want inactive", err)
				}
			}
			if creds && as.Calls() == calls {
				t.Fatal("the revoked JWT was not introspected")
			}
			if !creds && as.Calls() != calls {
				t.Fatal("JWT-only mode introspected")
			}
			if creds {
				// Still good at the authorization server: accepted after
				// one introspection, then from the cache.
				as.AddToken(old, map[string]any{"sub": "alice", "aud": testResource, "scope": "op", "exp": time.Now().Add(time.Hour).Unix()})
				v.Wait()
				clk.Advance(6 * time.Second) // past CACHE_NEGATIVE_TTL of the inactive answer
				calls = as.Calls()
				for range 3 {
					if _, err := v.Verify(t.Context(), old); err != nil {
						t.Fatalf("re-checked at the authorization server: %v", err)
					}
					v.Wait()
				}
				if as.Calls() != calls+1 {
					t.Errorf("%d introspections, want 1", as.Calls()-calls)
				}
			}
			clk.Advance(2 * time.Second)
			newer := as.jwt.Claims("alice", []string{"op"}, testResource, time.Hour)
			newer["iat"] = t0.Add(time.Second).Unix()
			if _, err := v.Verify(t.Context(), as.jwt.Token(newer)); err != nil {
				t.Fatalf("a JWT issued after the revocation: %v", err)
			}
		})
	}
}

// BenchmarkVerifyCacheHitShared is BenchmarkVerifyCacheHit with the shared
// tier configured: a hit never reaches Redis, and costs one atomic load
// while no revocation is live, a lookup per hit while some are.
func BenchmarkVerifyCacheHitShared(b *testing.B) {
	srv := redistest.Start(b)
	for _, live := range []int{0, 100} {
		b.Run(fmt.Sprintf("revocations=%d", live), func(b *testing.B) {
			as := introspecttest.New(b)
			m := newMachine(b, as, srv.URL())
			for i := range live {
				m.revs.Add(sharedcache.Revocation{Kind: sharedcache.KindSub, Value: fmt.Sprint("someone-", i), At: time.Now()})
			}
			tok := as.Issue("alice", []string{"op:add", "op:sub"}, testResource, time.Hour)
			if _, err := m.v.Verify(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
			m.v.Wait()
			ctx := b.Context()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.v.Verify(ctx, tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if n := as.Calls(); n != 1 {
				b.Errorf("server calls = %d, want 1", n)
			}
		})
	}
}
