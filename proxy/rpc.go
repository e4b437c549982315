package proxy

import (
	"bytes"
	"errors"
	"math"
	"strconv"

	"github.com/segmentio/encoding/json"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
)

// requestInfo is what one POST body carries.
type requestInfo struct {
	parsed     bool     // the body is a JSON-RPC message or batch
	initialize bool     // an initialize request: may create a session
	toolsList  []string // canonical ids of tools/list requests
	badListID  bool     // a tools/list whose id is not a string or safe integer
}

// Method names (MCP schema).
const (
	methodInitialize = "initialize"
	methodToolsList  = "tools/list"
)

// parseRequest reads a POST body as the Go MCP SDK and the gateway's scope
// check do (rpcpeek: segmentio's decoder, keys matched case-sensitively,
// the last of duplicate keys winning, as in JavaScript's JSON.parse and
// Python's json), so that the method the proxy sees is the method the
// upstream runs: the method (initialize may create a session; a tools/list
// answer may be rewritten) and the id (to find that answer among the
// messages the upstream sends back). A body another parser could read
// differently is read as the SDK reads it; the gateway refuses such
// bodies before they reach the proxy.
func parseRequest(body []byte) requestInfo {
	b, err := rpcpeek.Peek(body)
	var syn *rpcpeek.SyntaxError
	if errors.As(err, &syn) {
		return requestInfo{}
	}
	return infoOf(b.Messages)
}

// infoOf is what the proxy reads of a body's messages, peeked already.
func infoOf(msgs []rpcpeek.Message) requestInfo {
	var info requestInfo
	for i := range msgs {
		m := &msgs[i]
		switch m.Method {
		case methodInitialize:
			info.initialize = true
		case methodToolsList:
			if id, ok := requestID(m.ID); ok {
				info.toolsList = append(info.toolsList, id)
			} else {
				info.badListID = true
			}
		}
	}
	info.parsed = true
	return info
}

func decode(b []byte, v any) bool {
	// Parse reads the first JSON value and ignores what follows, as the
	// SDK's stream decoder does.
	_, err := json.Parse(b, v, json.DontMatchCaseInsensitiveStructFields)
	return err == nil
}

// jsonSpace is JSON's insignificant whitespace (RFC 8259 §2).
const jsonSpace = " \t\r\n"

// maxSafeInteger is 2^53 - 1: every integer up to it survives a round
// trip through a float64, as JavaScript upstreams hold JSON numbers.
const maxSafeInteger = 1<<53 - 1

// requestID canonicalises the id of a request the proxy must match an
// answer to: a JSON string (by its decoded value) or an integer written
// plainly and within ±(2^53-1), which every upstream echoes exactly (MCP
// requires a string or integer id). Anything else is refused by the
// caller rather than matched by guesswork.
func requestID(raw json.RawMessage) (string, bool) {
	raw = bytes.Trim(raw, jsonSpace)
	if len(raw) == 0 {
		return "", false
	}
	if raw[0] == '"' {
		return stringID(raw)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n > maxSafeInteger || n < -maxSafeInteger {
		return "", false
	}
	if strconv.FormatInt(n, 10) != string(raw) { // "+1", "01", "-0"
		return "", false
	}
	return "n:" + string(raw), true
}

// stringID canonicalises a JSON string id by its decoded value, so that
// "a" and "\u0061" name the same request.
func stringID(raw json.RawMessage) (string, bool) {
	var s string
	if !json.Valid(raw) || !decode(raw, &s) {
		return "", false
	}
	return "s:" + s, true
}

// responseID canonicalises the id of a message the upstream sent, more
// leniently than requestID: a number that an upstream rewrote (1.0, 1e0
// for 1) still names the request it answers, so an answer cannot escape
// the rewriting by the way its id is spelled.
func responseID(raw json.RawMessage) (string, bool) {
	raw = bytes.Trim(raw, jsonSpace)
	if len(raw) == 0 {
		return "", false
	}
	if raw[0] == '"' {
		return stringID(raw)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || f > maxSafeInteger || f < -maxSafeInteger {
		return "", false
	}
	return "n:" + strconv.FormatInt(int64(f), 10), true
}
