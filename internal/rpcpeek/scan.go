package rpcpeek

import (
	"bytes"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
)

// The members each level of a tools/call is read by.
const (
	keyMethod    = "method"
	keyParams    = "params"
	keyName      = "name"
	keyArguments = "arguments"
)

// twoKeys reads keys a and b of the JSON object obj (which the SDK's
// decoder has accepted) as the SDK's struct decoding does: keys unescaped
// and compared exactly, the last of duplicates winning. ambiguity reports
// a key another parser could read otherwise: a or b twice (parsers keep
// the first or the last), or a key equal to a or b only under case
// folding (encoding/json matches it, by the rules of bytes.EqualFold; the
// SDK ignores it). known, a value the decoder already delimited in obj (a
// slice of it), is stepped over rather than scanned: it is the large one.
func twoKeys(obj []byte, a, b string, known []byte, plain bool) (va, vb []byte, ambiguity string) {
	var na, nb int
	it := members{b: obj, known: known}
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		key := decodeKey(k, plain)
		switch {
		case key.is(a):
			va = v
			na++
		case key.is(b):
			vb = v
			nb++
		case key.folds(a):
			ambiguity = foldReason(ambiguity, a)
		case key.folds(b):
			ambiguity = foldReason(ambiguity, b)
		}
	}
	switch {
	case ambiguity != "":
	case na > 1:
		ambiguity = dupReason(a)
	case nb > 1:
		ambiguity = dupReason(b)
	}
	return va, vb, ambiguity
}

func foldReason(prev, name string) string {
	if prev != "" {
		return prev
	}
	return `a key differs from "` + name + `" only in case`
}

func dupReason(name string) string {
	return `the key "` + name + `" appears more than once`
}

// lookup returns the raw value the SDK reads for key name of the JSON
// object obj (the last of duplicates), or a reason another parser could
// read another one.
func lookup(obj []byte, name string, plain bool) (raw []byte, reason string) {
	n := 0
	it := members{b: obj}
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch key := decodeKey(k, plain); {
		case key.is(name):
			raw = v
			n++
		case key.folds(name):
			return nil, ": a key differs from it only in case"
		}
	}
	if n > 1 {
		return nil, ": it appears more than once"
	}
	return raw, ""
}

// key is an object key as the SDK's decoder reads it.
type key struct {
	s     []byte
	plain bool // ASCII: case folding cannot change its length
}

// decodeKey decodes a raw key (a JSON string literal). Keys without
// escapes, all of them in practice, cost nothing; plain says the whole
// body is ASCII without escapes.
func decodeKey(raw []byte, plain bool) key {
	inner := raw[1 : len(raw)-1]
	if plain {
		return key{s: inner, plain: true}
	}
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			return key{s: json.AppendUnescape(nil, raw, 0)}
		}
	}
	return key{s: inner, plain: true}
}

func (k key) is(name string) bool { return string(k.s) == name }

// folds: equal to name under Unicode case folding (bytes.EqualFold, the
// rule encoding/json matches fields by), but not exactly.
func (k key) folds(name string) bool {
	if k.plain && len(k.s) != len(name) {
		return false
	}
	return !k.is(name) && bytes.EqualFold(k.s, []byte(name))
}

// stringProblem reports why parsers could decode the JSON string literal
// raw differently, prefixed by what: invalid UTF-8 (Go substitutes U+FFFD,
// Python refuses the body) or a lone surrogate escape (Go substitutes
// U+FFFD, Python and JavaScript keep the surrogate). "" when there is none.
func stringProblem(raw []byte, what string) string {
	inner := skipSpace(raw)
	inner = inner[1 : len(inner)-1]
	if !utf8.Valid(inner) {
		return what + " is not valid UTF-8"
	}
	for i := 0; i < len(inner); i++ {
		if inner[i] != '\\' {
			continue
		}
		i++
		if i >= len(inner) || inner[i] != 'u' {
			continue
		}
		r, ok := hex4(inner[i+1:])
		switch {
		case !ok:
			return what + " has a malformed \\u escape"
		case r >= 0xDC00 && r <= 0xDFFF:
			return what + " has a lone surrogate escape"
		case r >= 0xD800 && r <= 0xDBFF:
			rest := inner[i+5:]
			lo, ok := rune(0), false
			if len(rest) >= 2 && rest[0] == '\\' && rest[1] == 'u' {
				lo, ok = hex4(rest[2:])
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return what + " has a lone surrogate escape"
			}
			i += 10 // the pair
		default:
			i += 4
		}
	}
	return ""
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// members iterates over the members of a JSON object that the SDK's
// decoder has already accepted, yielding each raw key (a string literal)
// and raw value. It only finds boundaries (validation is the decoder's),
// and stops, rather than panics, on anything unexpected.
type members struct {
	b       []byte
	started bool
	known   []byte // a value already delimited, a slice of b's array
}

func (it *members) next() (key, value []byte, ok bool) {
	b := skipSpace(it.b)
	if !it.started {
		if len(b) == 0 || b[0] != '{' {
			return nil, nil, false
		}
		b = b[1:]
		it.started = true
	} else {
		if len(b) == 0 || b[0] != ',' {
			return nil, nil, false
		}
		b = b[1:]
	}
	b = skipSpace(b)
	key, b = cutString(b)
	if key == nil {
		return nil, nil, false
	}
	b = skipSpace(b)
	if len(b) == 0 || b[0] != ':' {
		return nil, nil, false
	}
	b = skipSpace(b[1:])
	if len(it.known) > 0 && len(it.known) <= len(b) && cap(b) == cap(it.known) {
		// The same position of the same array: the decoder has already
		// delimited this value.
		value, b = b[:len(it.known)], b[len(it.known):]
	} else {
		value, b = cutValue(b)
	}
	if value == nil {
		return nil, nil, false
	}
	it.b = b
	return key, value, true
}

// cutString splits off the string literal at the start of b.
func cutString(b []byte) (lit, rest []byte) {
	if len(b) == 0 || b[0] != '"' {
		return nil, b
	}
	// Keys and most values are short: a plain loop first, then the
	// vectorised search for long strings.
	i := 1
	for ; i < len(b) && i < 24; i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return b[:i+1], b[i+1:]
		}
	}
	for i < len(b) {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return nil, b
		}
		i += j
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for k := i - 1; k > 0 && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return b[:i+1], b[i+1:]
		}
		i++
	}
	return nil, b
}

// cutValue splits off the JSON value at the start of b.
func cutValue(b []byte) (value, rest []byte) {
	if len(b) == 0 {
		return nil, b
	}
	switch b[0] {
	case '"':
		return cutString(b)
	case '{', '[':
		depth := 0
		for i := 0; i < len(b); i++ {
			switch b[i] {
			case '"':
				lit, _ := cutString(b[i:])
				if lit == nil {
					return nil, b
				}
				i += len(lit) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return b[:i+1], b[i+1:]
				}
			}
		}
		return nil, b
	}
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return b[:i], b[i:]
		}
	}
	return b, nil
}

// tooDeep is the SDK's nesting check (internal/json.checkMaxDepth), byte
// for byte: objects and arrays deeper than max, strings skipped, and a
// closing bracket never taking the depth below zero.
func tooDeep(b []byte, max int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return true
			}
		case '}', ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return false
}
