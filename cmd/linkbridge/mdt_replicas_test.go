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

	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
)

// TestMDTLiveAcrossReplicas: two replicas on one PostgreSQL database; a
// browser session signed in on replica A (its cookie, signed with the
// session key both share, also opens pages on B) has A's event stream
// open; a referral sent to replica B reaches that stream within 2 s
// (LISTEN/NOTIFY), and A's board then lists it.
func TestMDTLiveAcrossReplicas(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	dev := filepath.Join(t.TempDir(), "dev")
	addrA, _ := startServeDB(t, dbURL, "--dev-auth", "--dev-dir", dev)
	addrB, _ := startServeDB(t, dbURL, "--dev-auth", "--dev-dir", dev)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	signIn(t, browser, "http://"+addrA, "dev-mdt")
	// The session cookie works on the other replica too (a shared key).
	if resp, err := browser.Get("http://" + addrB + "/mdt"); err != nil || resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/mdt" {
		t.Fatalf("the session signed in on A does not open B's board: %v %v", err, resp)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addrA+"/mdt/events", nil)
	stream := &http.Client{Jar: jar}
	resp, err := stream.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("/mdt/events: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") {
				events <- strings.TrimPrefix(line, "data: ")
			}
		}
		close(events)
	}()

	var gpTok strings.Builder
	if err := run(context.Background(), []string{"token", "--dev-dir", dev, "--client", "dev-gp"}, noEnv, &gpTok, io.Discard); err != nil {
		t.Fatal(err)
	}
	fixture, err := os.ReadFile(filepath.Join("..", "..", "testdata", "fhir", "r4", "bundle-referral-transaction.json"))
	if err != nil {
		t.Fatal(err)
	}
	api := apiClient{t: t, base: "http://" + addrB}
	tx := api.must(http.StatusOK, strings.TrimSpace(gpTok.String()), http.MethodPost, "/fhir", "application/fhir+json", fixture, nil)
	sr := regexp.MustCompile(`"resourceType":"ServiceRequest","id":"([^"]+)"`).FindSubmatch(tx)
	if sr == nil {
		t.Fatalf("no ServiceRequest in %s", tx)
	}
	want := `{"referral":"` + string(sr[1]) + `"}`
	deadline := time.After(liveDeadline)
	for got := false; !got; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("replica A's event stream ended")
			}
			got = ev == want
		case <-deadline:
			t.Fatalf("replica A's stream did not announce the referral made on B within %s", liveDeadline)
		}
	}
	r, err := browser.Get("http://" + addrA + "/mdt/board")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Body.Close() }()
	var body strings.Builder
	_, _ = bufio.NewReader(r.Body).WriteTo(&body)
	if !strings.Contains(body.String(), `data-referral="`+string(sr[1])+`"`) {
		t.Errorf("replica A's board does not list the referral made on B")
	}
}

// signIn signs a cookie-keeping client in to the MDT pages as a
// development client, through the sign-in form as a browser would.
func signIn(t *testing.T, c *http.Client, base, client string) {
	t.Helper()
	resp, err := c.Get(base + "/mdt/sign-in")
	if err != nil {
		t.Fatal(err)
	}
	var page strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&page)
	_ = resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.String())
	if m == nil {
		t.Fatalf("no CSRF field on the sign-in page:\n%s", page.String())
	}
	resp, err = c.PostForm(base+"/mdt/sign-in", url.Values{"csrf": {m[1]}, "client": {client}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.Request.URL.Path != "/mdt" || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in as %s ended at %s with HTTP %d", client, resp.Request.URL.Path, resp.StatusCode)
	}
}

// startServeDB starts serve on a given database.
func startServeDB(t *testing.T, db string, args ...string) (string, *syncBuffer) {
	t.Helper()
	return startServe(t, append([]string{"--db", db}, args...)...)
}
