package resthook

import (
	"net/netip"
	"testing"

	"github.com/linkbridge/linkbridge"
)

func TestCheckEndpoint(t *testing.T) {
	prod := Policy{Hosts: []string{"hooks.example.org", "*.nhs.example", "10.1.2.0/24"}}
	dev := Policy{DevLoopback: true}
	for _, tt := range []struct {
		name   string
		p      Policy
		url    string
		wantOK bool
	}{
		{"ListedHTTPS", prod, "https://hooks.example.org/in", true},
		{"Wildcard", prod, "https://a.b.nhs.example/in", true},
		{"WildcardIsNotTheDomain", prod, "https://nhs.example/in", false},
		{"HTTP", prod, "http://hooks.example.org/in", false},
		{"NotListed", prod, "https://other.example.org/in", false},
		{"ListedPrivateCIDR", prod, "https://10.1.2.3/in", true},
		{"UnlistedPrivate", prod, "https://10.1.3.3/in", false},
		{"Loopback", prod, "https://127.0.0.1/in", false},
		{"UserInfo", prod, "https://u:p@hooks.example.org/in", false},
		{"NotHTTP", prod, "ftp://hooks.example.org/in", false},
		{"Relative", prod, "/in", false},
		{"DevLoopbackHTTP", dev, "http://127.0.0.1:8080/in", true},
		{"DevLocalhost", dev, "http://localhost:8080/in", true},
		{"DevNotLoopback", dev, "https://hooks.example.org/in", false},
		{"DevHTTPElsewhere", dev, "http://10.0.0.1/in", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.CheckEndpoint(tt.url)
			if tt.wantOK != (err == nil) {
				t.Fatalf("CheckEndpoint(%s) = %v, want ok %v", tt.url, err, tt.wantOK)
			}
			if err != nil && (linkbridge.ErrorCode(err) != linkbridge.EUNPROCESSABLE || linkbridge.ErrorExpression(err)[0] != "Subscription.channel.endpoint") {
				t.Fatalf("CheckEndpoint(%s) = %v: want EUNPROCESSABLE at Subscription.channel.endpoint", tt.url, err)
			}
		})
	}
}

// TestAllowAddr is the check as the connection is made (after DNS): an
// internal address is refused unless a CIDR entry covers it.
func TestAllowAddr(t *testing.T) {
	p := Policy{Hosts: []string{"hooks.example.org", "10.1.2.0/24"}}
	for addr, want := range map[string]bool{
		"93.184.216.34": true, "10.1.2.9": true, "10.9.9.9": false, "127.0.0.1": false, "::1": false,
		"169.254.169.254": false, "192.168.1.1": false, "100.64.0.1": false, "0.0.0.0": false, "fd00::1": false,
		"::ffff:127.0.0.1": false, "224.0.0.1": false,
	} {
		if got := p.AllowAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("AllowAddr(%s) = %v, want %v", addr, got, want)
		}
	}
	if err := p.DialControl("tcp", "127.0.0.1:443", nil); err == nil {
		t.Fatal("DialControl let a loopback connection through")
	}
	if !(Policy{DevLoopback: true}).AllowAddr(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("development refused loopback")
	}
}

func TestParseHosts(t *testing.T) {
	got, err := ParseHosts("Hooks.Example.org, *.nhs.example 10.0.0.0/8,192.0.2.1")
	if err != nil || len(got) != 4 || got[0] != "hooks.example.org" {
		t.Fatalf("ParseHosts = %v, %v", got, err)
	}
	for _, bad := range []string{"https://x.org", "10.0.0.0/99", "*.", "a..b"} {
		if _, err := ParseHosts(bad); err == nil {
			t.Errorf("ParseHosts(%q) accepted", bad)
		}
	}
}
