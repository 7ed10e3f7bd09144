package resthook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/linkbridge/linkbridge"
)

// Policy says which rest-hook endpoints a subscription may name, so that a
// Subscription cannot make the gateway call addresses it should not reach
// (docs/subscriptions.md#endpoints):
//
//   - the URL is https, has a host, and no user information;
//   - its host matches an entry of Hosts: "hooks.example.org" that host,
//     "*.example.org" any host under it, an IP address or a CIDR prefix
//     (an address literal in the URL must be in one);
//   - in development (DevLoopback), a loopback host (localhost, 127.0.0.0/8,
//     ::1) is allowed too, over http or https, without an entry.
//
// At delivery the addresses the host resolves to are checked again, as
// the connection is made (DialControl): a loopback, private, link-local,
// unspecified or multicast address is refused unless an IP or CIDR entry
// covers it (or, in development, it is loopback), so DNS that changes its
// answer after the check cannot turn the gateway on an internal address.
type Policy struct {
	Hosts       []string
	DevLoopback bool
}

// ParseHosts reads a comma- or space-separated list of host patterns
// (serve --subscription-endpoints), refusing a malformed one.
func ParseHosts(s string) ([]string, error) {
	var out []string
	for _, h := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case strings.Contains(h, "/"):
			if _, err := netip.ParsePrefix(h); err != nil {
				return nil, fmt.Errorf("subscription endpoint %q: not a CIDR prefix", h)
			}
		case strings.HasPrefix(h, "*."):
			if !validHost(h[2:]) {
				return nil, fmt.Errorf("subscription endpoint %q: not a host pattern", h)
			}
		case !validHost(h):
			if _, err := netip.ParseAddr(h); err != nil {
				return nil, fmt.Errorf("subscription endpoint %q: not a host, *.domain, IP address or CIDR prefix", h)
			}
		}
		out = append(out, h)
	}
	return out, nil
}

// validHost reports whether h is a DNS name of letters, digits, hyphens
// and dots.
func validHost(h string) bool {
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return false
	}
	for _, c := range []byte(h) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// refuse is the 422 of an endpoint the policy does not allow.
func refuse(format string, args ...any) error {
	return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "Subscription.channel.endpoint: "+format, args...).At("Subscription.channel.endpoint")
}

// CheckEndpoint returns EUNPROCESSABLE naming Subscription.channel.endpoint
// when raw is not an endpoint the policy allows.
func (p Policy) CheckEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return refuse("not an absolute http(s) URL")
	}
	if u.User != nil {
		return refuse("user information in the URL is not allowed (use Subscription.channel.header)")
	}
	if u.Fragment != "" {
		return refuse("a fragment is not allowed")
	}
	host := strings.ToLower(u.Hostname())
	loopback := isLoopbackHost(host)
	switch u.Scheme {
	case "https":
	case "http":
		if !(p.DevLoopback && loopback) {
			return refuse("must be https (http only to a loopback address in development)")
		}
	default:
		return refuse("must be https, not %s", u.Scheme)
	}
	if p.DevLoopback && loopback {
		return nil
	}
	if p.matchHost(host) {
		return nil
	}
	if len(p.Hosts) == 0 {
		return refuse("no rest-hook endpoints are allowed on this gateway (serve --subscription-endpoints)")
	}
	return refuse("host %s is not in the gateway's allow-list of subscription endpoints", host)
}

// matchHost reports whether an entry allows host (a name or an address
// literal).
func (p Policy) matchHost(host string) bool {
	addr, isAddr := parseAddr(host)
	for _, h := range p.Hosts {
		switch {
		case isAddr:
			if pre, err := netip.ParsePrefix(h); err == nil && pre.Contains(addr) {
				return true
			}
			if a, err := netip.ParseAddr(h); err == nil && a == addr {
				return true
			}
		case strings.HasPrefix(h, "*."):
			if strings.HasSuffix(host, h[1:]) && len(host) > len(h)-1 {
				return true
			}
		case h == host:
			return true
		}
	}
	return false
}

// parseAddr parses an IP literal host (brackets removed by url.Hostname).
func parseAddr(host string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// isLoopbackHost reports whether host is localhost or a loopback literal.
func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, ok := parseAddr(host)
	return ok && a.IsLoopback()
}

// internal reports whether a is an address the gateway must not reach
// unless allowed: loopback, private (RFC 1918, RFC 4193), link-local,
// unspecified, multicast, or the shared address space (RFC 6598).
func internal(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(a) || netip.MustParsePrefix("0.0.0.0/8").Contains(a)
}

// AllowAddr reports whether the gateway may connect to a: a public
// address, or an internal one an IP or CIDR entry covers (or loopback in
// development).
func (p Policy) AllowAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !internal(a) {
		return true
	}
	if p.DevLoopback && a.IsLoopback() {
		return true
	}
	for _, h := range p.Hosts {
		if pre, err := netip.ParsePrefix(h); err == nil && pre.Contains(a) {
			return true
		}
		if b, err := netip.ParseAddr(h); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}

// ErrAddressRefused is the error of a connection the policy refused.
var ErrAddressRefused = errors.New("resthook: endpoint address refused")

// DialControl is a net.Dialer Control function: it refuses a connection to
// an address the policy does not allow, after name resolution, as the
// connection is made.
func (p Policy) DialControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrAddressRefused, err)
	}
	a, ok := parseAddr(host)
	if !ok || !p.AllowAddr(a) {
		return fmt.Errorf("%w: %s is an internal address", ErrAddressRefused, host)
	}
	return nil
}
