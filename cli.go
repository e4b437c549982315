package main

// The command line: the gateway is configured by environment variables
// only, so its arguments are a handful of commands. Help prints the
// variables from .env.example itself (embedded), the one place each is
// described; TestEnvContract keeps that file complete.

import (
	_ "embed"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

//go:embed .env.example
var envExample string

// commands are the words run accepts as its first argument.
var commands = []string{"check", "version", "help"}

const usageText = `mcp-gateway: an OAuth resource server for the Model Context Protocol.

Usage:
  mcp-gateway            serve (development mode when AUTH_ISSUER_URL is unset)
  mcp-gateway check      the configuration doctor: reads the same environment, checks
                         the authorization server and the credentials, prints a fix
                         for each problem (exit 0 ready, 1 a check failed, 2 invalid
                         configuration); CHECK_TOKEN=<token> also checks a real token
  mcp-gateway version    print the version
  mcp-gateway help       this text (also -h, --help)

Under "go run .", pass commands after the dot: go run . check

Configuration is by environment variables only. Each one, with its default:

`

// usage prints the help text and every variable, as .env.example has them.
func usage(w io.Writer) {
	fmt.Fprint(w, usageText)
	for line := range strings.Lines(envExample) {
		fmt.Fprint(w, "  "+line)
	}
	fmt.Fprintln(w, "\nDocumentation: README.md, docs/architecture.md, docs/identity-providers.md, docs/troubleshooting.md")
}

// printVersion prints what the build recorded about itself: the module
// version, the commit and whether the tree was modified, and the Go version.
func printVersion(w io.Writer) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(w, "mcp-gateway (no build information)")
		return
	}
	fmt.Fprintf(w, "mcp-gateway %s (%s)\n", buildVersion(), bi.GoVersion)
}

// buildVersion is the module version and commit the build recorded ("" if
// none): the version printed, and the traces' service.version.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := bi.Main.Version
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		v += " " + rev[:min(12, len(rev))]
		if settings["vcs.modified"] == "true" {
			v += "+modified"
		}
	}
	return v
}

// unknownArguments explains arguments run does not take, suggesting the
// nearest command when one is close.
func unknownArguments(args []string) error {
	msg := fmt.Sprintf("unknown command %q: the gateway is configured by environment variables (see .env.example); commands are %s", args[0], strings.Join(commands, ", "))
	if s := nearest(strings.TrimLeft(args[0], "-"), commands); s != "" {
		msg = fmt.Sprintf("unknown command %q: did you mean %q? (mcp-gateway help lists the commands and variables)", args[0], s)
	}
	if len(args) > 1 && args[0] != "check" {
		msg += fmt.Sprintf("; unexpected arguments %q", args[1:])
	}
	return &configError{problems: []string{msg}}
}

// nearest returns the candidate within edit distance 2 of s, or "".
func nearest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes; the
// commands are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
