package introspect_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/mcp-gateway/mcp-gateway/accesstoken"
	"github.com/mcp-gateway/mcp-gateway/introspect"
	"github.com/mcp-gateway/mcp-gateway/introspect/introspecttest"
)

// A resource server verifies bearer tokens with its authorization server's
// RFC 7662 endpoint, found by RFC 8414 discovery from the issuer.
func ExampleVerifier_Verify() {
	// A fake authorization server, mounted on a test server of our own.
	srv := httptest.NewUnstartedServer(nil)
	as := introspecttest.NewHandler("http://" + srv.Listener.Addr().String())
	srv.Config.Handler = as
	srv.Start()
	defer srv.Close()
	good := as.Issue("alice", []string{"op:add"}, "https://calc.example.com/mcp", time.Hour)
	other := as.Issue("alice", []string{"op:add"}, "https://other.example.com/api", time.Hour)

	v, err := introspect.New(context.Background(), introspect.Config{
		Issuer:       as.URL, // the introspection endpoint is discovered
		ClientID:     as.ClientID,
		ClientSecret: as.ClientSecret,
		Audiences:    []string{"https://calc.example.com/mcp"},
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	info, err := v.Verify(context.Background(), good)
	fmt.Println(info.UserID, info.Scopes, err)

	_, err = v.Verify(context.Background(), other)
	var invalid *accesstoken.InvalidError
	fmt.Println(errors.As(err, &invalid), invalid.Reason)
	// Output:
	// alice [op:add] <nil>
	// true audience
}
