// Package clientip says which client a request is attributed to, for every
// per-client limit the gateway keeps (introspection admission, the
// development server's registration limit): one rule, so that an address
// cannot be one client for one limit and many for another.
package clientip

import (
	"net/netip"
	"strings"
)

// Key returns the per-client key of the IP address ip: an IPv4 address
// (or an IPv4-mapped IPv6 address) as itself, an IPv6 address as its /64
// prefix ("2001:db8:1:2::/64"). One host, or one customer of a provider,
// usually holds a whole /64 (RFC 6177 §3, RFC 7421), so keying by the full
// address would give a client rotating through its own prefix a fresh
// bucket per request. The zone of a link-local address is dropped. A value
// that is not an IP address is returned trimmed of spaces and otherwise
// unchanged, so that a caller never loses the distinction between clients it
// cannot parse.
func Key(ip string) string {
	ip = strings.TrimSpace(ip)
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64) // cannot fail for an IPv6 address
		return p.String()
	}
	return a.String()
}
