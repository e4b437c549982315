package accesstoken

import "strings"

// normalizeAudience returns the RFC 3986 §6.2.2 syntax-based normal form of
// an audience that is a hierarchical URI with an authority ("scheme://..."),
// plus the §6.2.3 scheme-based rules for http and https. Anything else (a
// URN, a bare client id such as "my-api", or a string that is not a valid
// URI) is returned unchanged and therefore compared exactly.
//
// Applied rules:
//   - §6.2.2.1 case: scheme and host lowercased; percent-encoding hex digits
//     uppercased;
//   - §6.2.2.2 percent-encoding: escapes of unreserved characters decoded;
//   - §6.2.2.3 dot segments removed from the path;
//   - §6.2.3 an empty or default port dropped ("https://h:443" == "https://h"),
//     and for http/https an empty path becomes "/".
//
// A trailing slash on a non-empty path is significant: "/mcp" != "/mcp/".
func normalizeAudience(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !validScheme(scheme) {
		return s
	}
	scheme = strings.ToLower(scheme)

	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]

	path, query, fragment := tail, "", ""
	hasQuery, hasFragment := false, false
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path, fragment, hasFragment = path[:i], path[i+1:], true
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query, hasQuery = path[:i], path[i+1:], true
	}

	userinfo, hostport := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, hostport = authority[:i+1], authority[i+1:]
	}
	host, port := hostport, ""
	// The port follows the last colon, unless that colon is inside an IPv6
	// literal "[...]".
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		host, port = hostport[:i], hostport[i+1:]
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				return s // not a URI port: compare exactly
			}
		}
	}
	if !validHost(host) {
		return s
	}
	if port == defaultPort(scheme) {
		port = ""
	}

	var ok1, ok2, ok3, ok4, ok5 bool
	if userinfo, ok1 = normalizePercent(userinfo); !ok1 {
		return s
	}
	// Decode first, then lowercase: "%41" is "A", so "a" (§6.2.2.1 applies
	// to the decoded host too, or normalizing twice would change it).
	if host, ok2 = normalizePercent(host); !ok2 {
		return s
	}
	host = lowerOutsideEscapes(host)
	if path, ok3 = normalizePercent(path); !ok3 {
		return s
	}
	if query, ok4 = normalizePercent(query); !ok4 {
		return s
	}
	if fragment, ok5 = normalizePercent(fragment); !ok5 {
		return s
	}
	path = removeDotSegments(path)
	if path == "" && (scheme == "http" || scheme == "https") {
		path = "/"
	}

	var b strings.Builder
	b.Grow(len(s) + 1)
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(userinfo)
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(path)
	if hasQuery {
		b.WriteByte('?')
		b.WriteString(query)
	}
	if hasFragment {
		b.WriteByte('#')
		b.WriteString(fragment)
	}
	return b.String()
}

// validHost checks the delimiters of RFC 3986 §3.2.2: a host is an IP
// literal, "[" and "]" around what has neither, or a reg-name, which has
// none of "[", "]" and ":" (a colon belongs only inside an IP literal).
func validHost(h string) bool {
	if h == "" {
		return false
	}
	if h[0] == '[' {
		return len(h) >= 2 && h[len(h)-1] == ']' && !strings.ContainsAny(h[1:len(h)-1], "[]")
	}
	return !strings.ContainsAny(h, "[]:")
}

// validScheme checks RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	// §6.2.3: an empty port ("host:") is equivalent to no port for any scheme.
	return ""
}

// normalizePercent decodes percent-escapes of RFC 3986 §2.3 unreserved
// characters and uppercases the hex digits of the others. ok is false for a
// malformed escape, in which case the string is not a valid URI.
func normalizePercent(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", false
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if isUnreserved(c) {
			b = append(b, c)
		} else {
			const upper = "0123456789ABCDEF"
			b = append(b, '%', upper[c>>4], upper[c&15])
		}
		i += 2
	}
	return string(b), true
}

// lowerOutsideEscapes lowercases the ASCII letters of s, a result of
// normalizePercent, except the hex digits of its escapes (uppercase,
// §6.2.2.1). Other bytes are kept as they are.
func lowerOutsideEscapes(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			i += 2 // normalizePercent left a well-formed escape
		case 'A' <= c && c <= 'Z':
			if b == nil {
				b = []byte(s)
			}
			b[i] = c + ('a' - 'A')
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// removeDotSegments is RFC 3986 §5.2.4.
func removeDotSegments(in string) string {
	if !strings.Contains(in, ".") {
		return in
	}
	var out []string // output segments, each starting with "/" (except maybe the first)
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "/..":
			in = "/"
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "." || in == "..":
			in = ""
		default:
			// Move the first segment (with its leading "/", if any) to out.
			start := 0
			if in[0] == '/' {
				start = 1
			}
			i := strings.IndexByte(in[start:], '/')
			if i < 0 {
				out = append(out, in)
				in = ""
			} else {
				out = append(out, in[:start+i])
				in = in[start+i:]
			}
		}
	}
	return strings.Join(out, "")
}
