package main

// The configuration doctor's proxy-mode check (UPSTREAM_URL): what
// proxy.Probe finds of the upstream, and what the policy says of each of
// its tools. Like the rest of the doctor it decides nothing of its own:
// the tools' fate is the policy's Requirement, as for a request.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mcp-gateway/mcp-gateway/proxy"
	"github.com/mcp-gateway/mcp-gateway/scopes"
)

// maxToolLines bounds the tools listed one per line; an upstream may list
// thousands.
const maxToolLines = 100

func checkUpstream(ctx context.Context, r *report, cfg *config) {
	where := proxy.Redacted(cfg.UpstreamURL)
	if cfg.PolicySource == policyNone {
		r.warn("proxy mode without POLICY or POLICY_FILE: every tool of the upstream needs only a valid token, and the upstream alone decides what each user may do")
		r.fix("declare which scopes each tool needs in POLICY or POLICY_FILE (README.md, \"Per-tool policy\"); the upstream's tools are listed below")
	}
	res, err := proxy.Probe(ctx, cfg.proxyConfig())
	if err != nil {
		var pe *proxy.ProbeError
		stage := ""
		if errors.As(err, &pe) {
			stage = pe.Stage
		}
		switch {
		case errors.Is(err, proxy.ErrCredentialsRejected):
			r.fail("upstream: %s refused the gateway's credential (UPSTREAM_AUTHORIZATION is %s)", where, setOrUnset(cfg.UpstreamAuthorization))
			r.fix("set UPSTREAM_AUTHORIZATION to the exact Authorization value the upstream expects, for example \"Bearer <secret>\"")
		case stage == "reach":
			r.fail("upstream: %v", err)
			r.fix("start the upstream MCP server, and check UPSTREAM_URL=%s (its Streamable HTTP endpoint, often ending in /mcp)", where)
		case stage == "initialize":
			r.fail("upstream: %s answers HTTP but not as an MCP server: %v", where, err)
			r.fix("UPSTREAM_URL must be the server's Streamable HTTP endpoint (not its legacy SSE endpoint or a web page); servers usually serve it at /mcp")
		case stage == "tools/list":
			r.fail("upstream: %s speaks MCP but tools/list failed: %v", where, err)
		default:
			r.fail("upstream: %v", err)
		}
		return
	}
	r.ok("upstream: %s answers", where)
	name := res.ServerName
	if res.ServerVersion != "" {
		name += " " + res.ServerVersion
	}
	r.ok("upstream speaks MCP: %q, protocol %s", name, res.ProtocolVersion)
	if res.Capabilities == nil || res.Capabilities.Tools == nil {
		r.warn("upstream declares no tools capability: there is nothing for the policy to authorize")
		return
	}
	more := ""
	if res.ToolsTruncated {
		more = " (and more: only the first were read)"
	}
	r.ok("upstream lists %d tool(s)%s; what the policy says of each:", len(res.Tools), more)

	var defaulted []string
	for i, tool := range res.Tools {
		decided := cfg.Policy.Matches(tool)
		if !decided {
			defaulted = append(defaulted, tool)
		}
		if i < maxToolLines {
			r.detail("- %q: %s", tool, toolVerdict(cfg.Policy, tool, decided))
		}
	}
	if n := len(res.Tools) - maxToolLines; n > 0 {
		r.detail("... and %d more", n)
	}
	if len(defaulted) > 0 && cfg.PolicySource != policyNone {
		r.warn("%d upstream tool(s) no rule of the policy names, decided by its default alone: %s", len(defaulted), quotedList(defaulted, 10))
		r.fix("name them in the policy (or match them with a glob) if the default is not what you mean for them")
	}
	var missing []string
	for _, t := range cfg.Policy.Tools() {
		if !slices.Contains(res.Tools, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 && !res.ToolsTruncated {
		r.warn("the policy names tool(s) the upstream does not list: %s (a typo, or a tool the upstream no longer has?)", quotedList(missing, 10))
	}
}

// toolVerdict says, for people, what the policy decides for tool.
func toolVerdict(p *scopes.Policy, tool string, decided bool) string {
	var v string
	req := p.Requirement(tool, nil)
	switch {
	case !req.Visible:
		v = "denied: hidden from tools/list, a call is refused as an unknown tool"
	case p.Argument(tool) != "":
		v = fmt.Sprintf("depends on its %q argument (%s)", p.Argument(tool), strings.Join(p.ArgumentValues(tool), ", "))
	case len(req.Scopes()) == 0:
		v = "any valid token"
	default:
		v = "needs " + strings.Join(req.Scopes(), " ")
	}
	if !decided {
		v += " (no rule names it: the default decides)"
	}
	return v
}

func quotedList(names []string, max int) string {
	q := make([]string, 0, min(len(names), max))
	for _, n := range names[:min(len(names), max)] {
		q = append(q, fmt.Sprintf("%q", n))
	}
	s := strings.Join(q, ", ")
	if len(names) > max {
		s += fmt.Sprintf(" and %d more", len(names)-max)
	}
	return s
}

func setOrUnset(v string) string {
	if v == "" {
		return "unset"
	}
	return "set"
}
