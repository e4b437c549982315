package rpcpeek

import (
	"bytes"
	"strings"
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

// checkKeys looks at the keys of the JSON object obj, which the SDK's
// decoder has already accepted, and reports one another parser could read
// as a or b differently from the SDK: the same key twice (parsers keep the
// first or the last), or a key equal to a or b only under case folding
// (encoding/json matches it, bytes.EqualFold rules; the SDK ignores it).
// "" when there is none.
func checkKeys(obj []byte, a, b string) string {
	var na, nb int
	it := members{b: obj}
	for {
		k, _, ok := it.next()
		if !ok {
			return dupReason(a, na) + dupReason(b, nb)
		}
		for _, name := range [2]string{a, b} {
			switch exact, folded := keyIs(k, name); {
			case exact && name == a:
				na++
			case exact:
				nb++
			case folded:
				return "a key differs from " + `"` + name + `"` + " only in case"
			}
		}
	}
}

func dupReason(name string, n int) string {
	if n > 1 {
		return `the key "` + name + `" appears more than once`
	}
	return ""
}

// lookup returns the raw value the SDK reads for key name of the JSON
// object obj (the last of duplicates), or a reason another parser could
// read another one.
func lookup(obj []byte, name string) (raw []byte, reason string) {
	n := 0
	it := members{b: obj}
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch exact, folded := keyIs(k, name); {
		case exact:
			raw = v
			n++
		case folded:
			return nil, "a key differs from it only in case"
		}
	}
	if n > 1 {
		return nil, "it appears more than once"
	}
	return raw, ""
}

// keyIs compares a raw key (a JSON string literal) with name once decoded
// as the SDK decodes it: exact, or equal only under Unicode case folding.
func keyIs(raw []byte, name string) (exact, folded bool) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		inner = json.AppendUnescape(nil, raw, 0)
	}
	if string(inner) == name {
		return true, false
	}
	return false, bytes.EqualFold(inner, []byte(name))
}

// checkString reports why parsers could decode the JSON string literal raw
// differently: invalid UTF-8 (Go substitutes U+FFFD, Python refuses the
// body or keeps the bytes) or a lone surrogate escape (Go substitutes
// U+FFFD, Python and JavaScript keep the surrogate).
func checkString(raw []byte, what string) string {
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

func asciiFoldEqual(a, b string) bool { return strings.EqualFold(a, b) }

// members iterates over the members of a JSON object that the SDK's
// decoder has already accepted, yielding each raw key (a string literal)
// and raw value. It only finds boundaries (validation is the decoder's),
// and stops, rather than panics, on anything unexpected.
type members struct {
	b       []byte
	started bool
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
	value, b = cutValue(b)
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
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return b[:i+1], b[i+1:]
		}
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
