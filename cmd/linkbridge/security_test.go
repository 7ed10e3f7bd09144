package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/gpfhir/gpfhirtest"
)

// TestServeRequiresAuthentication: serve refuses to start without an
// authentication choice, and --dev anywhere but on a loopback address.
func TestServeRequiresAuthentication(t *testing.T) {
	tmp := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"NoAuth", []string{"serve", "--create-db", "--db", filepath.Join(tmp, "a.db"), "--addr", "127.0.0.1:0"}, "authentication is required"},
		{"DevOnAllInterfaces", []string{"serve", "--create-db", "--dev", "--db", filepath.Join(tmp, "b.db"), "--addr", "0.0.0.0:0"}, "loopback"},
		{"DevAuthOnAllInterfaces", []string{"serve", "--create-db", "--dev-auth", "--dev-dir", filepath.Join(tmp, "dev"), "--db", filepath.Join(tmp, "c.db"), "--addr", ":0"}, "loopback"},
		{"DevAndConfig", []string{"serve", "--create-db", "--dev", "--auth-config", "x.json", "--db", filepath.Join(tmp, "d.db")}, "alternatives"},
		{"TLSKeyMissing", []string{"serve", "--create-db", "--dev", "--tls-cert", "c.pem", "--db", filepath.Join(tmp, "e.db")}, "--tls-key"},
		{"BadAuthConfig", []string{"serve", "--create-db", "--auth-config", filepath.Join(tmp, "missing.json"), "--db", filepath.Join(tmp, "f.db"), "--addr", "127.0.0.1:0"}, "missing.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := run(ctx, tt.args, noEnv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%v) = %v, want an error about %q", tt.args, err, tt.want)
			}
		})
	}
}

// startServe runs serve with args and returns its address and logs.
func startServe(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(withReady(context.Background(), ready))
	logs := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"serve", "--create-db", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "lb.db")}, args...), noEnv, logs, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return addr, logs
	case err := <-errc:
		t.Fatalf("serve: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	return "", nil
}

// TestDevModes: --dev says loudly that authentication is off; --dev-auth
// accepts exactly the tokens `linkbridge token` mints.
func TestDevModes(t *testing.T) {
	t.Run("Dev", func(t *testing.T) {
		addr, logs := startServe(t, "--dev")
		resp, err := http.Get("http://" + addr + "/fhir/Task")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /fhir/Task with --dev: %d", resp.StatusCode)
		}
		if !strings.Contains(logs.String(), "AUTHENTICATION IS OFF") || !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("--dev start-up does not warn loudly:\n%s", logs)
		}
	})
	t.Run("DevAuth", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "dev")
		addr, _ := startServe(t, "--dev-auth", "--dev-dir", dir)
		get := func(token string) int {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/fhir/Task", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			return resp.StatusCode
		}
		if st := get(""); st != http.StatusUnauthorized {
			t.Errorf("no token: %d, want 401", st)
		}
		var out bytes.Buffer
		if err := run(context.Background(), []string{"token", "--dev-dir", dir, "--client", "dev-sp"}, noEnv, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if st := get(strings.TrimSpace(out.String())); st != http.StatusOK {
			t.Errorf("token from `linkbridge token`: %d, want 200", st)
		}
		out.Reset()
		if err := run(context.Background(), []string{"token", "--dev-dir", dir, "--client", "dev-admin"}, noEnv, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if st := get(strings.TrimSpace(out.String())); st != http.StatusForbidden {
			t.Errorf("admin token reading Tasks: %d, want 403", st)
		}
		if err := run(context.Background(), []string{"token", "--dev-dir", dir, "--client", "nobody"}, noEnv, io.Discard, io.Discard); err == nil {
			t.Error("token for an unknown client was minted")
		}
	})
}

// TestServeTLS serves HTTPS with TLS 1.2 at least: a TLS 1.1 client is
// refused, a TLS 1.2 client served.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	addr, _ := startServe(t, "--dev", "--tls-cert", certPath, "--tls-key", keyPath)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := func(maxVersion uint16) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: maxVersion}}}
	}
	if _, err := client(tls.VersionTLS11).Get("https://" + addr + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	resp, err := client(tls.VersionTLS12).Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("TLS 1.2 client: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz over TLS: %d", resp.StatusCode)
	}
}

// TestJourneyLogsNoPersonalData runs a whole referral journey through the
// real serve command, with authentication and write-back on and logging at
// debug level, including refused and failing requests, and checks that no
// NHS number, name, date of birth or free text reaches the logs.
func TestJourneyLogsNoPersonalData(t *testing.T) {
	gp, err := gpfhirtest.New(gpfhirtest.Options{Patients: map[string]string{"9434765919": "gp-pat-1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gp.Close)
	dir := filepath.Join(t.TempDir(), "dev")
	addr, logs := startServe(t, "--dev-auth", "--dev-dir", dir, "--log-level", "debug", "--service-ods", "Y02662",
		"--gp-base", gp.URL+"/fhir", "--gp-timeout", "2s", "--rescue-after", "4s")
	token := func(client string) string {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"token", "--dev-dir", dir, "--client", client}, noEnv, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}
	gpTok, spTok, mdtTok := token("dev-gp"), token("dev-sp"), token("dev-mdt")
	call := func(tok, method, path, ctype string, body []byte, h map[string]string) (int, []byte, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(body))
		if body != nil {
			req.Header.Set("Content-Type", ctype)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header
	}
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "fhir", "r4", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const fhirCT, jsonCT = "application/fhir+json", "application/json"
	if st, b, _ := call(gpTok, "POST", "/fhir", fhirCT, fixture("bundle-referral-transaction.json"), nil); st != 200 {
		t.Fatalf("intake: %d %s", st, b)
	}
	// Refused and failing requests: a bad NHS number, an unknown element,
	// no token, a forged token, another organisation's read.
	call(gpTok, "POST", "/fhir/ServiceRequest", fhirCT, fixture("invalid/servicerequest-nhs-number-fails-mod11.json"), nil)
	call(gpTok, "POST", "/fhir/ServiceRequest", fhirCT, fixture("invalid/servicerequest-unknown-element.json"), nil)
	call("", "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919", "", nil, nil)
	call(gpTok+"x", "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919", "", nil, nil)
	call(token("dev-gp-other"), "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919", "", nil, nil)
	// Reads and searches by NHS number (query strings hold it).
	for _, tok := range []string{gpTok, spTok, mdtTok} {
		if st, b, _ := call(tok, "GET", "/fhir/Task?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919&_include=Task:patient", "", nil, nil); st != 200 || !bytes.Contains(b, []byte("9434765919")) {
			t.Fatalf("chained search: %d %s", st, b)
		}
	}
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	_, b, _ := call(spTok, "GET", "/sp/v1/referrals", "", nil, nil)
	if err := json.Unmarshal(b, &page); err != nil || len(page.Items) != 1 {
		t.Fatalf("inbox: %s", b)
	}
	id := page.Items[0].ID
	const (
		notes   = "Felt very isolated since the bereavement in March"
		matters = "Getting back to the allotment with her neighbour"
		summary = "Now walks with the Tuesday group and visits her sister"
		lwName  = "Samira Okonkwo-Reyes"
	)
	steps := []struct {
		method, path, body string
	}{
		{"PUT", "/consent", `{"consent":"full"}`},
		{"POST", "/actions", `{"action":"accept","linkWorker":{"id":"lw-17","name":"` + lwName + `"}}`},
		{"POST", "/contacts", `{"at":"2026-11-23T10:00:00Z","mode":"phone","minutes":30,"attended":true,"notes":"` + notes + `"}`},
		{"PUT", "/plan", `{"whatMatters":"` + matters + `","goals":[{"description":"Join a walking group","importance":8,"confidence":6,"status":"active"}]}`},
		{"POST", "/measures", `{"instrument":"SWEMWBS","timepoint":"baseline","items":[2,3,3,2,3,2,3],"takenAt":"2026-11-23T10:00:00Z"}`},
		{"POST", "/actions", `{"action":"complete","reasonCode":"goals-met","summary":"` + summary + `"}`},
		{"POST", "/contacts", `{"at":"2026-11-24T10:00:00Z","mode":"phone","minutes":30,"attended":true,"notes":"` + notes + `"}`}, // refused: completed
	}
	for i, s := range steps {
		st, b, _ := call(spTok, s.method, "/sp/v1/referrals/"+id+s.path, jsonCT, []byte(s.body), nil)
		if (i < len(steps)-1) != (st < 300) {
			t.Fatalf("%s %s: %d %s", s.method, s.path, st, b)
		}
	}
	// Wait for the write-backs to reach the GP record.
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := false
		for _, w := range gp.Writes() {
			done = done || w.Type == "Task" && bytes.Contains(w.Body, []byte(`"status":"completed"`))
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the completed Task was not written back; logs:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "referral stored") || !strings.Contains(out, "authentication failed") ||
		!strings.Contains(out, "client_id=dev-sp") || !strings.Contains(out, "client_id=dev-gp") {
		t.Fatalf("the logs do not cover the journey (debug lines, intake, refused token, client ids):\n%s", out)
	}
	for _, secret := range []string{"9434765919", "943 476 5919", "XXTESTPATIENT", "1956-03-14", notes, matters, summary, lwName, "Okonkwo", gpTok[:40]} {
		if strings.Contains(out, secret) {
			i := strings.Index(out, secret)
			t.Errorf("the logs hold %q: …%s…", secret, out[max(0, i-300):min(len(out), i+100)])
		}
	}
}

// TestServeMutualTLS: a client certificate signed by --tls-client-ca and
// registered for a client authenticates as that client; no certificate and
// no token is 401; a certificate from another CA is refused at the
// handshake.
func TestServeMutualTLS(t *testing.T) {
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	issue := func(tmpl, parent *x509.Certificate, pub any, signer *ecdsa.PrivateKey) *x509.Certificate {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	caKey, otherKey, srvKey, cliKey := newKey(), newKey(), newKey(), newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	ca := issue(caTmpl, caTmpl, caKey.Public(), caKey)
	otherTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "other CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	other := issue(otherTmpl, otherTmpl, otherKey.Public(), otherKey)
	srv := issue(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, srvKey.Public(), caKey)
	cli := issue(&x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "mdt-viewer", Organization: []string{"NHS"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, cliKey.Public(), caKey)
	forged := issue(&x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{CommonName: "mdt-viewer", Organization: []string{"NHS"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, other, cliKey.Public(), otherKey)
	caPath := writePEM("ca.pem", "CERTIFICATE", ca.Raw)
	srvDER, _ := x509.MarshalPKCS8PrivateKey(srvKey)
	cfg := `{"clients":[{"id":"mdt-viewer","role":"mdt","ods":"U12345","practices":["A81001"],"scopes":["system/*.read"],"certSubject":"CN=mdt-viewer,O=NHS"}]}`
	cfgPath := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := startServe(t, "--auth-config", cfgPath, "--tls-cert", writePEM("srv.pem", "CERTIFICATE", srv.Raw),
		"--tls-key", writePEM("srv-key.pem", "PRIVATE KEY", srvDER), "--tls-client-ca", caPath)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	get := func(cert *x509.Certificate) (int, error) {
		tc := &tls.Config{RootCAs: roots}
		if cert != nil {
			// Sent whatever CAs the server names, so the server's own check
			// is what is tested.
			tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: cliKey}, nil
			}
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := c.Get("https://" + addr + "/fhir/Task")
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	if st, err := get(cli); err != nil || st != http.StatusOK {
		t.Errorf("registered client certificate: %d %v, want 200", st, err)
	}
	if st, err := get(nil); err != nil || st != http.StatusUnauthorized {
		t.Errorf("no certificate, no token: %d %v, want 401", st, err)
	}
	if st, err := get(forged); err == nil {
		t.Errorf("a certificate from another CA was accepted: %d", st)
	}
}
