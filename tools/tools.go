// Package tools holds the gateway's MCP tools: a calculator whose every
// operation needs its own OAuth scope, and whoami, which reports the caller
// the bearer token speaks for.
//
// Both read the caller from req.Extra.TokenInfo, which the Go MCP SDK fills
// only for requests that passed auth.RequireBearerToken.
package tools

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// CalculatorInput is the calculator tool's arguments.
type CalculatorInput struct {
	Operation string  `json:"operation" jsonschema:"the operation: add, subtract, multiply or divide"`
	A         float64 `json:"a" jsonschema:"the first operand"`
	B         float64 `json:"b" jsonschema:"the second operand"`
}

// CalculatorOutput is the calculator tool's structured result.
type CalculatorOutput struct {
	Operation string  `json:"operation" jsonschema:"the operation performed"`
	A         float64 `json:"a"`
	B         float64 `json:"b"`
	Result    float64 `json:"result" jsonschema:"a <operation> b"`
}

// WhoamiOutput is what whoami reports about the caller. It never holds the
// token itself.
type WhoamiOutput struct {
	Subject   string   `json:"sub,omitempty" jsonschema:"the user's subject identifier at the authorization server"`
	Username  string   `json:"username,omitempty" jsonschema:"the user name, when the authorization server gives one"`
	Email     string   `json:"email,omitempty" jsonschema:"the e-mail address, when the authorization server gives one"`
	ClientID  string   `json:"client_id,omitempty" jsonschema:"the OAuth client the token was issued to"`
	Scopes    []string `json:"scopes" jsonschema:"the scopes granted to the token"`
	ExpiresAt string   `json:"expires_at,omitempty" jsonschema:"when the token expires (RFC 3339)"`
}

// Register adds the calculator and whoami tools to s, with policy deciding
// which scopes a call needs (the calculator checks it again itself; the
// gateway checks it before any tool runs). Pass Policy(), or a declared
// policy.
func Register(s *mcp.Server, policy *scopes.Policy) error {
	in, err := jsonschema.For[CalculatorInput](nil)
	if err != nil {
		return fmt.Errorf("tools: calculator input schema: %w", err)
	}
	op := in.Properties["operation"]
	if op == nil {
		return errors.New("tools: calculator input schema has no operation property")
	}
	for _, o := range Operations() {
		op.Enum = append(op.Enum, o)
	}
	in.AdditionalProperties = &jsonschema.Schema{Not: &jsonschema.Schema{}}

	mcp.AddTool(s, &mcp.Tool{
		Name:        CalculatorTool,
		Title:       "Calculator",
		Description: calculatorDescription(policy),
		InputSchema: in,
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, calculator(policy))

	// whoami always returns a list of scopes (possibly empty), never null;
	// the inferred schema's ["null","array"] is not portable (MCP Inspector
	// flags it), so say "array".
	out, err := jsonschema.For[WhoamiOutput](nil)
	if err != nil {
		return fmt.Errorf("tools: whoami output schema: %w", err)
	}
	if sc := out.Properties["scopes"]; sc != nil {
		sc.Types, sc.Type = nil, "array"
	}
	mcp.AddTool(s, &mcp.Tool{
		Name:         WhoamiTool,
		OutputSchema: out,
		Title:        "Who am I",
		Description:  "Reports who the access token speaks for: subject, user name or e-mail, client, granted scopes and expiry.",
		Annotations:  &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, whoami)
	return nil
}

func ptr[T any](v T) *T { return &v }

// calculatorDescription tells a client (and the model behind it) which
// scope each operation needs under policy.
func calculatorDescription(policy *scopes.Policy) string {
	var parts []string
	for _, op := range Operations() {
		r := policy.Requirement(CalculatorTool, scopes.Arg("operation", op))
		switch need := r.Scopes(); {
		case r.Denied:
			parts = append(parts, op+" is not allowed")
		case len(need) == 0:
			parts = append(parts, op+" any valid token")
		default:
			parts = append(parts, op+" "+strings.Join(need, " "))
		}
	}
	return "Adds, subtracts, multiplies or divides two numbers. The OAuth scopes each operation needs: " +
		strings.Join(parts, ", ") + "."
}

// calculator checks the scope again even though the HTTP layer already did:
// with SCOPE_CHALLENGE=tool the HTTP check is off, and a tool must not rely
// on its transport for authorisation.
func calculator(policy *scopes.Policy) mcp.ToolHandlerFor[CalculatorInput, CalculatorOutput] {
	return func(ctx context.Context, req *mcp.CallToolRequest, in CalculatorInput) (*mcp.CallToolResult, CalculatorOutput, error) {
		if !slices.Contains(operations[:], in.Operation) {
			return nil, CalculatorOutput{}, fmt.Errorf("unknown operation %q: use add, subtract, multiply or divide", in.Operation)
		}
		err := policy.Allowed(granted(req), CalculatorTool, scopes.Arg("operation", in.Operation))
		var insufficient *scopes.InsufficientScopeError
		switch {
		case errors.As(err, &insufficient):
			return nil, CalculatorOutput{}, fmt.Errorf("the %s operation needs the %s scope, which this token was not granted", in.Operation, strings.Join(insufficient.Missing, " "))
		case err != nil:
			return nil, CalculatorOutput{}, err
		}
		r, err := compute(in.Operation, in.A, in.B)
		if err != nil {
			return nil, CalculatorOutput{}, err
		}
		out := CalculatorOutput{Operation: in.Operation, A: in.A, B: in.B, Result: r}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strconv.FormatFloat(r, 'g', -1, 64)}}}, out, nil
	}
}

// compute performs one calculator operation. Division by zero and results
// that are not finite are errors: JSON cannot carry Inf or NaN, and a client
// should see why rather than a protocol failure.
func compute(op string, a, b float64) (float64, error) {
	var r float64
	switch op {
	case OpAdd:
		r = a + b
	case OpSubtract:
		r = a - b
	case OpMultiply:
		r = a * b
	case OpDivide:
		if b == 0 {
			return 0, errors.New("division by zero")
		}
		r = a / b
	default:
		return 0, fmt.Errorf("unknown operation %q", op)
	}
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return 0, fmt.Errorf("the result of %s is not a finite number", op)
	}
	return r, nil
}

func granted(req *mcp.CallToolRequest) []string {
	if ti := tokenInfo(req); ti != nil {
		return ti.Scopes
	}
	return nil
}

func tokenInfo(req *mcp.CallToolRequest) *auth.TokenInfo {
	if req == nil || req.Extra == nil {
		return nil
	}
	return req.Extra.TokenInfo
}

func whoami(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, WhoamiOutput, error) {
	ti := tokenInfo(req)
	if ti == nil {
		return nil, WhoamiOutput{}, errors.New("no authenticated caller")
	}
	out := WhoamiOutput{
		Subject:  ti.UserID,
		Username: stringClaim(ti, "username"),
		Email:    stringClaim(ti, "email"),
		ClientID: stringClaim(ti, "client_id"),
		Scopes:   append([]string{}, ti.Scopes...),
	}
	if s := stringClaim(ti, "sub"); s != "" {
		out.Subject = s
	}
	if !ti.Expiration.IsZero() {
		out.ExpiresAt = ti.Expiration.UTC().Format(time.RFC3339)
	}
	who := out.Subject
	if out.Username != "" {
		who = out.Username
	} else if out.Email != "" {
		who = out.Email
	}
	text := fmt.Sprintf("You are %s (client %s), with scopes %v.", orUnknown(who), orUnknown(out.ClientID), out.Scopes)
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, out, nil
}

func stringClaim(ti *auth.TokenInfo, k string) string {
	s, _ := ti.Extra[k].(string)
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
