package introspect

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

const testResource = "https://mcp.example.com/mcp"

// fakeClock is a manually advanced clock for Config.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newTestVerifier returns a Verifier talking to srv with a fake clock
// starting at the real current time (the fake server mints exp from the
// real clock).
func newTestVerifier(t testing.TB, srv *introspecttest.Server, mods ...func(*Config)) (*Verifier, *fakeClock) {
	t.Helper()
	clk := newFakeClock(time.Now())
	cfg := Config{
		Endpoint:     srv.IntrospectionURL(),
		Issuer:       srv.URL,
		ClientID:     srv.ClientID,
		ClientSecret: srv.ClientSecret,
		Audiences:    []string{testResource},
		Timeout:      2 * time.Second,
		Now:          clk.Now,
	}
	for _, m := range mods {
		m(&cfg)
	}
	v, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v, clk
}

func reasonOf(err error) accesstoken.Reason {
	var ite *accesstoken.InvalidError
	if errors.As(err, &ite) {
		return ite.Reason
	}
	return ""
}

// holdAnswers makes srv keep every introspection request waiting until
// release is closed (or sent on, which lets one through), or the request
// ends; then srv answers normally.
func holdAnswers(srv *introspecttest.Server) (release chan struct{}) {
	release = make(chan struct{})
	srv.SetFailure(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	return release
}

// fillSlots takes n introspection slots (known lane: any free slot), as n
// calls in flight would; release them with v.release.
func (v *Verifier) fillSlots(n int) {
	for range n {
		if !v.slots.tryAcquire(laneKnown) {
			panic("fillSlots: no free slot")
		}
	}
}
