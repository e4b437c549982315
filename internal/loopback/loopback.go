// Package loopback says whether a host names this machine's loopback
// interface. The gateway allows plain http only to such hosts (issuer,
// introspection endpoint, resource, redirect URIs), keeps development mode
// on them, and uses them for DNS-rebinding protection.
package loopback

import (
	"net"
	"net/netip"
	"strings"
)

// Host reports whether host is "localhost" or a loopback IP address
// (127.0.0.0/8, ::1, or an IPv4-mapped form of one). Brackets around an
// IPv6 literal are tolerated.
func Host(host string) bool {
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// HostPort is Host for a "host:port" (a Host header, a listener address);
// a value without a port is taken as a host.
func HostPort(hostport string) bool {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return Host(h)
	}
	return Host(hostport)
}
