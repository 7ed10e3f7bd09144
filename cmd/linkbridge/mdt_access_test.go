package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMDTAccess: the pages authorise as the API does. A browser signs in
// with a registered client's bearer token; a practice's session sees its
// own referrals only (another's person page answers 404, as a missing
// one); an administrator's token and a bad token are refused; every page
// view is in the audit trail, naming the route template, never the path.
func TestMDTAccess(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "dev")
	addr, logs := startServe(t, "--dev-auth", "--dev-dir", dev)
	base := "http://" + addr
	token := func(client string) string {
		var out strings.Builder
		if err := run(context.Background(), []string{"token", "--dev-dir", dev, "--client", client}, noEnv, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}
	fixture, err := os.ReadFile(filepath.Join("..", "..", "testdata", "fhir", "r4", "bundle-referral-transaction.json"))
	if err != nil {
		t.Fatal(err)
	}
	api := apiClient{t: t, base: base}
	tx := api.must(http.StatusOK, token("dev-gp"), http.MethodPost, "/fhir", "application/fhir+json", fixture, nil)
	sr := string(regexp.MustCompile(`"resourceType":"ServiceRequest","id":"([^"]+)"`).FindSubmatch(tx)[1])

	// signInToken posts the sign-in form with a token; it returns the
	// client and the status of the answer the form led to.
	signInToken := func(tok string) (*http.Client, int, string) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		resp, err := c.Get(base + "/mdt/sign-in")
		if err != nil {
			t.Fatal(err)
		}
		var page strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&page)
		_ = resp.Body.Close()
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.String())[1]
		resp, err = c.PostForm(base+"/mdt/sign-in", url.Values{"csrf": {csrf}, "token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		page.Reset()
		_, _ = bufio.NewReader(resp.Body).WriteTo(&page)
		_ = resp.Body.Close()
		return c, resp.StatusCode, page.String()
	}
	get := func(c *http.Client, path string) (int, string) {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return resp.StatusCode, b.String()
	}

	own, st, page := signInToken(token("dev-mdt"))
	if st != http.StatusOK || !strings.Contains(page, `data-referral="`+sr+`"`) {
		t.Fatalf("the MDT viewer of A81001 signed in with its token: HTTP %d, board without the referral", st)
	}
	if st, page := get(own, "/mdt/people/"+sr); st != http.StatusOK || !strings.Contains(page, "943 476 5919") {
		t.Errorf("the MDT viewer's person page: HTTP %d", st)
	}

	other, st, page := signInToken(token("dev-gp-other"))
	if st != http.StatusOK || strings.Contains(page, sr) {
		t.Errorf("practice B82002's board: HTTP %d, lists A81001's referral: %v", st, strings.Contains(page, sr))
	}
	if st, page := get(other, "/mdt/people/"+sr); st != http.StatusNotFound || strings.Contains(page, "943 476 5919") {
		t.Errorf("practice B82002 opening A81001's person page: HTTP %d, want 404 without the person", st)
	}

	for name, tok := range map[string]string{"an administrator's token": token("dev-admin"), "a bad token": "eyJhbGciOiJub25lIn0.e30."} {
		c, st, _ := signInToken(tok)
		if st == http.StatusOK {
			t.Errorf("sign-in with %s succeeded", name)
		}
		if st, _ := get(c, "/mdt/board"); st != http.StatusUnauthorized {
			t.Errorf("after sign-in with %s, the board fragment answers %d, want 401", name, st)
		}
	}

	audit := string(api.must(http.StatusOK, token("dev-admin"), http.MethodGet, "/fhir/AuditEvent?agent=dev-gp-other&_count=50", "", nil, nil))
	for _, want := range []string{"HTTP 404 GET /mdt/people/{id}", "HTTP 200 GET /mdt", "HTTP 303 POST /mdt/sign-in", "ServiceRequest/" + sr} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit trail of dev-gp-other lacks %q", want)
		}
	}
	if strings.Contains(audit, "/mdt/people/"+sr) {
		t.Error("the audit trail names a page's path instead of its route template")
	}
	for _, never := range []string{"XXTESTPATIENT", "9434765919", "Alex"} {
		if strings.Contains(logs.String(), never) {
			t.Errorf("the gateway's logs hold personal data (%q)", never)
		}
	}
}
