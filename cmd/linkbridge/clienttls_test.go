package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientTLS: the outbound TLS settings of the GP endpoint and MESH
// share one reader: none set is nil (system roots), and each bad file is
// refused naming its own flag.
func TestClientTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tc, err := clientTLS("gp", "", "", ""); tc != nil || err != nil {
		t.Errorf("clientTLS with nothing set = %v, %v; want nil, nil", tc, err)
	}
	for _, tc := range []struct {
		flag, cert, key, ca, want string
	}{
		{"gp", "", "", filepath.Join(dir, "missing.pem"), "--gp-ca"},
		{"mesh", "", "", notPEM, "--mesh-ca: no certificates found"},
		{"mesh", notPEM, notPEM, "", "--mesh-client-cert"},
	} {
		if _, err := clientTLS(tc.flag, tc.cert, tc.key, tc.ca); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("clientTLS(%s, %q, %q, %q) error = %v, want one naming %q", tc.flag, tc.cert, tc.key, tc.ca, err, tc.want)
		}
	}
}
