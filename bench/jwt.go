package main

// Target 7: JWT access tokens verified locally (issue 14). The gateway
// child "gateway (JWT)" is configured with AUTH_ISSUER_URL alone; its
// issuer is fakeJWTIssuer, in this process. A new JWT on every request
// (cache-hostile) is compared with one cached JWT (hot token), in the same
// run, phase after phase: no network call is needed for either, so the
// ratio is what one local verification costs a request.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-gateway/mcp-gateway/bench/loadgen"
)

// fakeJWTIssuer serves RFC 8414 metadata with a jwks_uri and the JWKS of
// one RSA 2048 key, and mints RFC 9068 access tokens (RS256, the algorithm
// Auth0, Okta, Entra ID, Cognito, Keycloak and oidc-provider sign with by
// default) for audience. Tokens are minted before each phase, so that
// minting (about 1 ms each) does not load the phase.
type fakeJWTIssuer struct {
	URL      string
	audience string
	signer   jose.Signer
	jwks     []byte
	srv      *http.Server
	n        atomic.Int64
}

func newFakeJWTIssuer(audience string) (*fakeJWTIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "bench-1"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "bench-1", Algorithm: "RS256", Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	j := &fakeJWTIssuer{URL: "http://" + ln.Addr().String(), audience: audience, signer: signer, jwks: jwks}
	j.srv = &http.Server{Handler: j, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = j.srv.Serve(ln) }()
	return j, nil
}

func (j *fakeJWTIssuer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = j.srv.Shutdown(ctx)
}

func (j *fakeJWTIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/jwks":
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(j.jwks)
	case "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration":
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": j.URL, "jwks_uri": j.URL + "/jwks",
			"authorization_endpoint": j.URL + "/authorize", "token_endpoint": j.URL + "/token",
		})
	default:
		http.NotFound(w, r)
	}
}

// mint returns a new access token with every scope, valid for an hour; its
// claims are an RFC 9068 token's, about the size of a real one.
func (j *fakeJWTIssuer) mint() (string, error) {
	i := j.n.Add(1)
	now := time.Now().Unix()
	payload := fmt.Sprintf(`{"iss":%q,"sub":"user-%08d-0000-4000-8000-000000000000","aud":%q,"client_id":"bench-client","scope":"op:add op:sub op:mult op:div","exp":%d,"iat":%d,"jti":"jti-%d"}`,
		j.URL, i, j.audience, now+3600, now, i)
	jws, err := j.signer.Sign([]byte(payload))
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// mintN mints n tokens on every CPU of the load generator.
func (j *fakeJWTIssuer) mintN(n int, workers int) ([]string, error) {
	out := make([]string, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	per := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, n)
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				t, err := j.mint()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				out[i] = t
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	return out, nil
}

func (b *bench) jwtHostile(ctx context.Context) error {
	conns, rounds := b.o.Conns, max(1, b.o.HostileRounds)
	fmt.Fprintf(b.out, "[7] JWT access tokens (AUTH_ISSUER_URL alone, RS256): a new JWT on every request vs one cached JWT, %d conns, %v per phase, %d round(s)\n", conns, b.o.Duration, rounds)
	client := loadgen.NewClient(conns)
	defer client.CloseIdleConnections()
	hot, err := b.jwtAS.mint()
	if err != nil {
		return err
	}
	warm := min(time.Second, max(b.o.Duration/5, 100*time.Millisecond))
	if _, err := loadgen.Run(ctx, loadgen.Config{URL: b.gwJWT.URL, Connections: conns, Duration: warm, Token: loadgen.Static(hot), Client: client}); err != nil {
		return err
	}
	var ratios, hotRPS, newRPS []float64
	var best float64 // req/s
	errs, reused := 0, int64(0)
	for range rounds {
		gcNow()
		cpu0 := readCPUTimes()
		if b.o.PhaseProfilesJWT != "" {
			if err := b.gwJWT.phaseStart(); err != nil {
				return err
			}
		}
		hr, err := loadgen.Run(ctx, loadgen.Config{URL: b.gwJWT.URL, Connections: conns, Duration: b.o.Duration, Token: loadgen.Static(hot), Client: client})
		if b.o.PhaseProfilesJWT != "" {
			if err := b.gwJWT.phaseEnd(); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		b.logf("hot JWT  %s; %s", hr, b.phaseCPU(cpu0))
		// Enough new tokens for twice the best throughput seen so far,
		// minted before the phase so that minting does not load it.
		best = max(best, hr.RPS())
		n := int(best*b.o.Duration.Seconds()*2) + conns
		toks, err := b.jwtAS.mintN(n, max(1, len(b.plan.Driver)))
		if err != nil {
			return err
		}
		var next atomic.Int64
		src := func(int, int) string {
			i := next.Add(1) - 1
			if i >= int64(len(toks)) {
				return toks[i%int64(len(toks))] // counted below: a reuse is a cache hit
			}
			return toks[i]
		}
		gcNow()
		cpu0 = readCPUTimes()
		nr, err := loadgen.Run(ctx, loadgen.Config{URL: b.gwJWT.URL, Connections: conns, Duration: b.o.Duration, Token: src, WarmupToken: hot, Client: client})
		if err != nil {
			return err
		}
		b.logf("new JWT  %s; %s", nr, b.phaseCPU(cpu0))
		for _, s := range append(hr.ErrorSamples, nr.ErrorSamples...) {
			b.logf("         error: %s", s)
		}
		if over := next.Load() - int64(len(toks)); over > 0 {
			reused += over
		}
		errs += hr.Errors + nr.Errors
		hotRPS, newRPS = append(hotRPS, hr.RPS()), append(newRPS, nr.RPS())
		best = max(best, nr.RPS())
		if hr.RPS() > 0 {
			ratios = append(ratios, nr.RPS()/hr.RPS())
		}
	}
	med := medianF(ratios)
	b.add(row{ID: "7a", Target: fmt.Sprintf("JWT cache-hostile throughput / hot-token throughput, %d conns", conns),
		Measured: fmt.Sprintf("median %.3f of rounds [%s]; new JWT %.0f req/s, hot JWT %.0f req/s (medians); errors %d; tokens reused %d",
			med, listF(ratios, "%.2f"), medianF(newRPS), medianF(hotRPS), errs, reused),
		Goal: ">= 0.80 (introspection at 20 ms: about 0.3, rows 4)", Verdict: verdict(med >= 0.8 && errs == 0 && reused == 0), Enforced: b.enforceTiming()})
	return nil
}
