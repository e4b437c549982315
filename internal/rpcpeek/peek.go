// Package rpcpeek reads what a JSON-RPC request body asks for: each
// message's method and, for a tools/call, the tool's name and arguments,
// read exactly as the Go MCP SDK will read them. An authorization decision
// taken on anything else could be about a different call than the one that
// runs: {"operation":"add","Operation":"divide"} is "add" to one JSON
// parser and "divide" to another.
//
// When the gateway forwards the body to an upstream MCP server written in
// another language, that server's parser reads it too. Parsers disagree on
// duplicate keys (Go's and Python's take the last, some take the first),
// on keys that differ only in case (encoding/json matches them, the SDK
// does not), on trailing data, on invalid UTF-8 and lone surrogates, on
// NaN (Python accepts it). Peek therefore also reports every body that some
// parser could read differently, so that the gateway refuses it rather
// than guess.
package rpcpeek

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/segmentio/asm/ascii"
	"github.com/segmentio/encoding/json"
)

// MaxDepth is the SDK's nesting bound (internal/json.defaultMaxDepth): a
// body nested deeper is rejected by the SDK, and by Peek before it spends
// any work on it.
const MaxDepth = 1000

// MethodToolsCall is the method of a tool call (MCP server/tools).
const MethodToolsCall = "tools/call"

// Message is one JSON-RPC message of a request body.
type Message struct {
	// Method is the "method" member as the SDK decodes it; "" for a
	// message without one (a response).
	Method string
	// ID is the "id" member's raw JSON value as the SDK decodes it (the
	// last of duplicate keys), a slice of the body; nil when absent (a
	// notification). A gateway that answers a request itself, instead of
	// forwarding it, echoes it (JSON-RPC 2.0 §5).
	ID []byte
	// Tool is params.name of a tools/call.
	Tool string
	// Arguments is params.arguments of a tools/call: the raw JSON value
	// (an object, unless Peek reported an ambiguity), a slice of the body,
	// so valid only as long as the body is; nil when absent or null.
	Arguments []byte

	plain bool // the body is ASCII without escapes
}

// Body is what a request body asks for.
type Body struct {
	// Batch: the body is a JSON array of messages. The gateway must refuse
	// a batch whose members it would decide differently (some allowed,
	// some refused): a server answers a batch as a whole.
	Batch    bool
	Messages []Message
}

// SyntaxError: the SDK rejects the body (not JSON, nested deeper than
// [MaxDepth], not a JSON-RPC message or batch of messages), so nothing
// runs in the gateway's own server. A proxy must refuse it itself: its
// upstream's parser may accept what the SDK rejects (Python reads NaN,
// a byte-order mark, UTF-16).
type SyntaxError struct {
	Reason string
}

func (e *SyntaxError) Error() string { return "malformed JSON-RPC body: " + e.Reason }

// AmbiguityError: the SDK reads the body (and Peek returns what the SDK
// reads), but another JSON parser could read a different method, tool or
// argument from it. Refuse it.
type AmbiguityError struct {
	Index  int // the message in a batch; 0 for a single message
	Reason string
}

func (e *AmbiguityError) Error() string {
	return "ambiguous JSON-RPC body (message " + strconv.Itoa(e.Index) + "): " + e.Reason
}

// Peek reads a request body. Body is filled whenever err is nil or an
// *AmbiguityError (then with what the SDK reads); on a *SyntaxError it is
// empty.
//
// The body is validated, and the message's method and params found, by
// the SDK's own decoder with the SDK's settings (segmentio/encoding/json
// into json.RawMessage fields, keys matched case-sensitively, the last of
// duplicates winning); the members below params are then taken by the
// same rules while every key read is checked for look-alikes. FuzzPeek
// checks the result against the SDK's decoding path, run for real, and
// against encoding/json.
func Peek(body []byte) (Body, error) {
	b := skipSpace(body)
	// The SDK's nesting check first; it also bounds the recursion of the
	// decoder below. A body with fewer brackets than the bound cannot nest
	// deeper, and counting them is much cheaper than scanning.
	if bytes.Count(b, []byte{'{'})+bytes.Count(b, []byte{'['}) > MaxDepth && tooDeep(b, MaxDepth) {
		return Body{}, &SyntaxError{Reason: "nested deeper than " + strconv.Itoa(MaxDepth)}
	}
	switch {
	case len(b) == 0:
		return Body{}, &SyntaxError{Reason: "empty body"}
	case b[0] != '{' && b[0] != '[':
		// null decodes as an empty batch in the SDK; anything else is no
		// message at all.
		return Body{}, &SyntaxError{Reason: "not a JSON-RPC message or batch"}
	}
	// One allocation holds the decoder's targets and the message of a
	// single-message body.
	s := new(scratch)
	// In the usual body, ASCII without a single escape, keys and strings
	// are their own text: no look-alike can hide in an escape or a
	// Unicode case fold, and no string can be invalid UTF-8.
	s.plain = ascii.Valid(b) && bytes.IndexByte(b, '\\') < 0
	var amb *AmbiguityError
	ambiguous := func(i int, reason string) {
		if amb == nil && reason != "" {
			amb = &AmbiguityError{Index: i, Reason: reason}
		}
	}
	var out Body
	var rest []byte
	if b[0] == '{' {
		// The SDK's stream decoder reads the first value and ignores
		// what follows (internal/json.Unmarshal).
		m, r, syn, reason := s.readMessage(b)
		if syn != "" {
			return Body{}, &SyntaxError{Reason: syn}
		}
		ambiguous(0, reason)
		s.one[0] = m
		out.Messages, rest = s.one[:], r
	} else {
		// mcp.readBatch: the body as an array of raw messages, then each
		// member decoded; one bad member fails the whole body.
		var batch []json.RawMessage
		r, err := json.Parse(b, &batch, flags)
		switch {
		case err != nil:
			return Body{}, &SyntaxError{Reason: "not valid JSON"}
		case len(batch) == 0:
			return Body{}, &SyntaxError{Reason: "empty batch"}
		}
		out.Batch, rest = true, r
		out.Messages = make([]Message, 0, len(batch))
		for i, e := range batch {
			if kindOf(e) != '{' {
				return Body{}, &SyntaxError{Reason: "batch member " + strconv.Itoa(i) + " is not an object"}
			}
			m, _, syn, reason := s.readMessage(e)
			if syn != "" {
				return Body{}, &SyntaxError{Reason: "batch member " + strconv.Itoa(i) + ": " + syn}
			}
			ambiguous(i, reason)
			out.Messages = append(out.Messages, m)
		}
	}
	if len(skipSpace(rest)) != 0 {
		// Most parsers refuse the body; a server reading a stream of
		// messages would run a second one.
		ambiguous(0, "data after the JSON-RPC message")
	}
	if amb != nil {
		return out, amb
	}
	return out, nil
}

// flags decode as the SDK does (internal/json: DontMatchCaseInsensitive-
// StructFields), without copying the raw values Peek hands out as slices
// of the body.
const flags = json.DontMatchCaseInsensitiveStructFields | json.DontCopyRawMessage

// scratch holds what Peek decodes into, in one allocation.
type scratch struct {
	plain bool
	// wire is the part of jsonrpc2.wireDecode the decision reads: the SDK
	// decodes "method" and "params" into json.RawMessage, then the method
	// into a string.
	wire struct {
		ID     json.RawMessage `json:"id"`
		Method json.RawMessage `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	one [1]Message
}

// readMessage reads the JSON-RPC message object at the start of b as
// jsonrpc2.DecodeMessage and, for a tools/call, mcp.CallToolParamsRaw
// decode it, and returns what follows it. syn is non-empty when the SDK
// rejects the body because of it; ambiguity is non-empty when another
// parser could read it differently.
func (s *scratch) readMessage(b []byte) (m Message, rest []byte, syn, ambiguity string) {
	s.wire.ID, s.wire.Method, s.wire.Params = nil, nil, nil
	rest, err := json.Parse(b, &s.wire, flags)
	if err != nil {
		return Message{}, nil, "not valid JSON", ""
	}
	obj := b[:len(b)-len(rest)]
	m.plain = s.plain
	if len(s.wire.ID) > 0 {
		m.ID = s.wire.ID
	}
	method, params := s.wire.Method, s.wire.Params
	_, _, ambiguity = twoKeys(obj, keyMethod, keyParams, params, s.plain)
	switch kindOf(method) {
	case 0:
	case '"':
		m.Method = decodeString(method, s.plain)
		if ambiguity == "" && !s.plain {
			ambiguity = stringProblem(method, "the method")
		}
	case 'n':
		// The SDK takes null as the method "" (and then refuses it).
		if ambiguity == "" {
			ambiguity = "the method is null"
		}
	default:
		return Message{}, nil, "the method is not a string", ""
	}
	if m.Method != MethodToolsCall {
		if ambiguity == "" && m.Method != "" && strings.EqualFold(m.Method, MethodToolsCall) {
			ambiguity = "the method differs from tools/call only in case"
		}
		return m, rest, "", ambiguity
	}
	if kindOf(params) != '{' {
		if ambiguity == "" {
			ambiguity = "the params of a tools/call are not an object"
		}
		return m, rest, "", ambiguity
	}
	// params: the members mcp.CallToolParamsRaw reads, taken as the
	// decoder takes them (the last of duplicates), in the same pass as the
	// look for keys that would read otherwise elsewhere.
	name, args, reason := twoKeys(params, keyName, keyArguments, nil, s.plain)
	if ambiguity == "" {
		ambiguity = reason
	}
	switch kindOf(name) {
	case '"':
		m.Tool = decodeString(name, s.plain)
		if ambiguity == "" && !s.plain {
			ambiguity = stringProblem(name, "the tool name")
		}
	default:
		if ambiguity == "" {
			ambiguity = "the tool name is missing or not a string"
		}
	}
	switch kindOf(args) {
	case 0, 'n':
	case '{':
		m.Arguments = args
	default:
		m.Arguments = args // what a raw tool handler would get
		if ambiguity == "" {
			ambiguity = "the arguments of a tools/call are not an object"
		}
	}
	return m, rest, "", ambiguity
}

// StringArgument reads one argument of a tools/call as a string, as the
// SDK reads it (the last of duplicate keys, keys matched exactly).
// present is false when the argument is absent or null. err is an
// *AmbiguityError when another parser could read a different value: the
// key appears twice or differs only in case from name, or the value is not
// a string, is not valid UTF-8 or holds a lone surrogate escape.
func (m Message) StringArgument(name string) (value string, present bool, err error) {
	if m.Arguments == nil {
		return "", false, nil
	}
	if kindOf(m.Arguments) != '{' {
		return "", false, &AmbiguityError{Reason: "the arguments are not an object"}
	}
	raw, reason := lookup(m.Arguments, name, m.plain)
	if reason != "" {
		return "", false, &AmbiguityError{Reason: "argument " + strconv.Quote(name) + reason}
	}
	switch kindOf(raw) {
	case 0, 'n':
		return "", false, nil
	case '"':
	default:
		return "", false, &AmbiguityError{Reason: "argument " + strconv.Quote(name) + " is not a string"}
	}
	if m.plain {
		return decodeString(raw, true), true, nil
	}
	if reason := stringProblem(raw, ""); reason != "" {
		return "", false, &AmbiguityError{Reason: "argument " + strconv.Quote(name) + reason}
	}
	return decodeString(raw, false), true, nil
}

// kindOf returns the first byte of a raw JSON value ('{', '[', '"', 'n',
// 't', 'f', or a number's first byte); 0 for an absent value.
func kindOf(raw []byte) byte {
	raw = skipSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// decodeString decodes a JSON string literal with the SDK's decoder. A
// literal without escapes that is valid UTF-8 is its own content (the
// decoder's fast path), and costs one allocation.
func decodeString(raw []byte, plain bool) string {
	raw = skipSpace(raw)
	inner := raw[1 : len(raw)-1]
	if plain || bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		switch string(inner) { // known methods: no allocation
		case MethodToolsCall:
			return MethodToolsCall
		case "tools/list":
			return "tools/list"
		case "initialize":
			return "initialize"
		case "notifications/initialized":
			return "notifications/initialized"
		case "ping":
			return "ping"
		}
		return string(inner)
	}
	return string(json.AppendUnescape(nil, raw, 0))
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// StringArgument reads one argument from the raw "arguments" object of a
// tools/call (as the SDK hands it to a server: CallToolParamsRaw.Arguments),
// with the same rules as Message.StringArgument.
func StringArgument(arguments []byte, name string) (value string, present bool, err error) {
	return Message{Arguments: arguments}.StringArgument(name)
}

// TooDeep reports whether JSON text nests objects and arrays deeper than
// MaxDepth, as the SDK's own check does: the bound on the work a hostile
// body (or an upstream's answer) can cause before anything decodes it.
func TooDeep(b []byte) bool { return tooDeep(b, MaxDepth) }
