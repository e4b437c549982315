package proxy

import (
	"bytes"
	"errors"
	"io"

	"github.com/segmentio/encoding/json"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
)

// filterTools rewrites one JSON-RPC message or batch (JSON-RPC 2.0 §5,
// §6) the upstream sent: in every response whose id match accepts and
// whose result holds a tools array (MCP ListToolsResult), the tools that
// keep refuses are removed, and so are tools without a string name, which
// keep cannot judge. Everything else is returned byte for byte (changed
// is false). Text that is not JSON is returned as it is: no client can
// read a tool list from it.
//
// It decodes as the SDK clients do (case-sensitive, the last of duplicate
// keys winning), so that the tools it judges are the tools a client sees.
//
// A nil match accepts every message, whatever its id, or without one.
func filterTools(data []byte, match func(id string) bool, keep func(name string) bool) (out []byte, changed bool, err error) {
	trimmed := bytes.TrimLeft(data, jsonSpace)
	if len(trimmed) == 0 || rpcpeek.TooDeep(trimmed) {
		return data, false, nil
	}
	if trimmed[0] != '[' {
		out, changed, err := filterOne(trimmed, match, keep)
		if err != nil || !changed {
			return data, false, err
		}
		return out, true, nil
	}
	var batch []json.RawMessage
	if !decode(trimmed, &batch) {
		return data, false, nil
	}
	some := false
	for i, m := range batch {
		out, changed, err := filterOne(m, match, keep)
		if err != nil {
			return data, false, err
		}
		if changed {
			batch[i], some = out, true
		}
	}
	if !some {
		return data, false, nil
	}
	out, err = json.Marshal(batch)
	if err != nil {
		return data, false, &RewriteError{Reason: "re-encoding a batch: " + err.Error()}
	}
	return out, true, nil
}

// envelope is what tells a response from other messages.
type envelope struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
}

func filterOne(msg []byte, match func(string) bool, keep func(string) bool) ([]byte, bool, error) {
	var env envelope
	if !decode(msg, &env) || len(env.Result) == 0 {
		return msg, false, nil
	}
	if match != nil {
		id, ok := responseID(env.ID)
		if !ok || !match(id) {
			return msg, false, nil
		}
	}
	var result map[string]json.RawMessage
	if !decode(env.Result, &result) || result == nil {
		return msg, false, nil // not an object: no tool list in it
	}
	raw, ok := result["tools"]
	if !ok || bytes.Equal(bytes.Trim(raw, jsonSpace), []byte("null")) {
		return msg, false, nil
	}
	var tools []json.RawMessage
	if !decode(raw, &tools) {
		return nil, false, &RewriteError{Reason: "tools is not an array"}
	}
	kept := tools[:0]
	for _, t := range tools {
		var tool struct {
			Name *string `json:"name"`
		}
		if decode(t, &tool) && tool.Name != nil && keep(*tool.Name) {
			kept = append(kept, t)
		}
	}
	if len(kept) == len(tools) {
		return msg, false, nil
	}
	var err error
	if result["tools"], err = json.Marshal(kept); err != nil {
		return nil, false, &RewriteError{Reason: err.Error()}
	}
	var whole map[string]json.RawMessage
	if !decode(msg, &whole) {
		return nil, false, &RewriteError{Reason: "response is not an object"}
	}
	if whole["result"], err = json.Marshal(result); err != nil {
		return nil, false, &RewriteError{Reason: err.Error()}
	}
	out, err := json.Marshal(whole)
	if err != nil {
		return nil, false, &RewriteError{Reason: err.Error()}
	}
	return out, true, nil
}

// sseRewriter passes a text/event-stream through event by event,
// rewriting the data of events that carry a tools/list answer
// (filterTools). It parses the stream as the WHATWG HTML standard's
// "Server-sent events" §9.2.6 says a client does: lines end in CRLF, LF
// or CR; a line starting with ":" is a comment; "field:value" drops one
// space after the colon; a line without a colon is a field with an empty
// value; the data lines of an event are joined with LF; an empty line
// ends the event; a UTF-8 BOM at the start of the stream is ignored. An event that is
// not rewritten is passed on byte for byte.
//
// Each event is handed on as soon as its empty line arrives (Read
// returns it, and ReverseProxy flushes), so progress notifications are
// not held back. At most max bytes of one event are buffered: a longer
// event ends the stream with a *RewriteError, and an event cut short by
// the end of the stream is dropped (a client discards it too), so a tool
// list never passes unfiltered.
//
// Why not a library: the SSE readers for Go parse events for a client and
// lose the bytes around them; a proxy must pass every other byte through
// unchanged, and bound what it holds.
type sseRewriter struct {
	src     io.ReadCloser
	rewrite func(data []byte) ([]byte, bool, error)
	max     int

	buf    []byte // input read and not yet consumed: buf[r:]
	r      int
	skipLF bool // the last line ended in CR: a LF right after belongs to it
	start  bool // no line read yet
	eof    bool

	event   []byte // raw bytes of the event being read
	data    []byte // its data buffer
	hasData bool

	out []byte // ready for Read
	err error
}

func newSSERewriter(src io.ReadCloser, max int, rewrite func([]byte) ([]byte, bool, error)) *sseRewriter {
	return &sseRewriter{src: src, rewrite: rewrite, max: max, start: true}
}

func (s *sseRewriter) Close() error { return s.src.Close() }

func (s *sseRewriter) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		s.err = s.next()
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// readChunk is how much more input is asked of the upstream at a time.
const readChunk = 4 << 10

var bom = []byte("\xEF\xBB\xBF")

// next reads lines until an event is complete and puts it in out, or
// returns why the stream ends (io.EOF at its end).
func (s *sseRewriter) next() error {
	// Read calls next only once out is consumed: the last event's bytes
	// can be reused.
	s.event = s.event[:0]
	for {
		if s.skipLF && s.r < len(s.buf) {
			if s.buf[s.r] == '\n' {
				s.event = append(s.event, '\n')
				s.r++
			}
			s.skipLF = false
		}
		rest := s.buf[s.r:]
		i := bytes.IndexAny(rest, "\r\n")
		if i < 0 {
			if s.eof {
				// An event the stream ended in the middle of is not
				// dispatched by a client (§9.2.6): drop it.
				return io.EOF
			}
			if len(s.event)+len(rest) > s.max {
				return &RewriteError{Reason: "a server-sent event exceeds the rewrite bound"}
			}
			if err := s.fill(); err != nil {
				return err
			}
			continue
		}
		line := rest[:i]
		s.skipLF = rest[i] == '\r'
		s.event = append(s.event, rest[:i+1]...)
		s.r += i + 1
		if len(s.event) > s.max {
			return &RewriteError{Reason: "a server-sent event exceeds the rewrite bound"}
		}
		blank := len(line) == 0
		if s.start { // the standard ignores a BOM at the start of the stream
			s.start = false
			blank = len(bytes.TrimPrefix(line, bom)) == 0
		}
		if blank {
			return s.dispatch()
		}
		// Elsewhere a BOM-prefixed line is no data line to the standard;
		// it is read as one here all the same, so that a client lax about
		// it cannot find data the rewriter did not judge. (Such a line
		// does not end the event, as it does not for the standard.)
		s.field(bytes.TrimPrefix(line, bom))
	}
}

// field processes one non-empty line.
func (s *sseRewriter) field(line []byte) {
	if len(line) == 0 || line[0] == ':' { // a BOM alone, or a comment
		return
	}
	name, value := line, []byte(nil)
	if c := bytes.IndexByte(line, ':'); c >= 0 {
		name, value = line[:c], line[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	if string(name) == "data" {
		s.data = append(s.data, value...)
		s.data = append(s.data, '\n')
		s.hasData = true
	}
}

// dispatch ends the event the empty line closed: rewritten when its data
// carries a tools list to filter, else as it came.
func (s *sseRewriter) dispatch() error {
	raw := s.event
	defer func() { s.data, s.hasData = s.data[:0], false }()
	if !s.hasData {
		s.out = raw
		return nil
	}
	data := s.data[:len(s.data)-1] // the last LF is not part of the data
	rewritten, changed, err := s.rewrite(data)
	if err != nil {
		return err
	}
	if !changed {
		s.out = raw
		return nil
	}
	if bytes.ContainsAny(rewritten, "\r\n") { // would break the event's framing
		return &RewriteError{Reason: "the rewritten event has a line break"}
	}
	s.out = rebuildEvent(raw, rewritten)
	return nil
}

// rebuildEvent writes the event's lines other than data as they were
// (id, event, retry, comments: in their order, with LF endings) and one
// data line, where the first was, holding the rewritten JSON (which has
// no line breaks: segmentio escapes them in strings).
func rebuildEvent(raw, data []byte) []byte {
	out := make([]byte, 0, len(raw)+len(data))
	wrote := false
	for len(raw) > 0 {
		i := bytes.IndexAny(raw, "\r\n")
		if i < 0 {
			i = len(raw)
		}
		line := raw[:i]
		raw = raw[i:]
		if len(raw) > 0 {
			if raw[0] == '\r' && len(raw) > 1 && raw[1] == '\n' {
				raw = raw[2:]
			} else {
				raw = raw[1:]
			}
		}
		if len(line) == 0 {
			continue
		}
		name := bytes.TrimPrefix(line, bom)
		if c := bytes.IndexByte(name, ':'); c >= 0 {
			name = name[:c]
		}
		if string(name) == "data" {
			if !wrote {
				out = append(out, "data: "...)
				out = append(out, data...)
				out = append(out, '\n')
				wrote = true
			}
			continue
		}
		out = append(out, line...)
		out = append(out, '\n')
	}
	return append(out, '\n')
}

// fill reads more of the upstream's stream.
func (s *sseRewriter) fill() error {
	if s.r > 0 {
		// Keep only what is unconsumed; event bytes were copied out.
		n := copy(s.buf, s.buf[s.r:])
		s.buf, s.r = s.buf[:n], 0
	}
	if cap(s.buf)-len(s.buf) < readChunk {
		grown := make([]byte, len(s.buf), 2*cap(s.buf)+readChunk)
		copy(grown, s.buf)
		s.buf = grown
	}
	n, err := s.src.Read(s.buf[len(s.buf):cap(s.buf)])
	s.buf = s.buf[:len(s.buf)+n]
	if errors.Is(err, io.EOF) {
		s.eof = true
		return nil
	}
	return err
}
