package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The MDT pages in a real browser (docs/mdt.md#how-it-is-tested): Debian's
// chromium, driven by chromedp, against `serve --dev-auth` on a real SQLite
// file; every change made through the real /sp/v1 and /fhir APIs.
//
// Without chromium or axe-core the test skips locally and fails under
// CI=true (.ci/run installs chromium and fetches axe-core). On failure a
// screenshot of the page is saved under $LINKBRIDGE_TEST_ARTIFACTS (else a
// temporary directory) and its path printed.
//
// go test -run TestMDTBrowser ./cmd/linkbridge/ -mdt.screenshots ../../docs/img
// writes the README's screenshots.

var mdtScreenshots = flag.String("mdt.screenshots", "", "write the MDT pages' screenshots (mdt-board.png, mdt-person.png, mdt-phone.png) into this directory")

// liveDeadline is the bound on a change reaching an open page.
const liveDeadline = 2 * time.Second

// needBrowserTool returns a tool's path from env or PATH; it skips the test
// when missing, but fails it under CI=true.
func needBrowserTool(t *testing.T, what, env string, names ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found (set %s, or install it: .ci/run does)", what, env)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; under CI=true the browser test must run")
	}
	t.Skip(msg)
	return ""
}

// artifactDir is where failure screenshots go.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("LINKBRIDGE_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	d, err := os.MkdirTemp("", "linkbridge-mdt-artifacts-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// apiClient calls the gateway's APIs with a development token.
type apiClient struct {
	t    *testing.T
	base string
}

func (c apiClient) call(tok, method, path, ctype string, body []byte, h map[string]string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// must fails unless the call answered want.
func (c apiClient) must(want int, tok, method, path, ctype string, body []byte, h map[string]string) []byte {
	c.t.Helper()
	st, b := c.call(tok, method, path, ctype, body, h)
	if st != want {
		c.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, st, want, b)
	}
	return b
}

func TestMDTBrowser(t *testing.T) {
	chrome := needBrowserTool(t, "chromium", "LINKBRIDGE_CHROMIUM", "chromium", "chromium-browser", "google-chrome")
	axePath := os.Getenv("LINKBRIDGE_AXE_JS")
	if axePath == "" {
		needBrowserTool(t, "axe-core (axe.min.js: bash adapter/mdtweb/fetch-axe.sh)", "LINKBRIDGE_AXE_JS")
	}
	axeJS, err := os.ReadFile(axePath)
	if err != nil {
		t.Fatalf("LINKBRIDGE_AXE_JS: %v", err)
	}

	dir := filepath.Join(t.TempDir(), "dev")
	addr, logs := startServe(t, "--dev-auth", "--dev-dir", dir, "--service-ods", "Y02662")
	base := "http://" + addr
	token := func(client string) string {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"token", "--dev-dir", dir, "--client", client}, noEnv, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}
	gpTok, spTok := token("dev-gp"), token("dev-sp")
	api := apiClient{t: t, base: base}

	// One browser for every step.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-gpu", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser) // after the failure screenshot below (cleanups run last first)
	// The browser starts with the first run on bctx itself: a run on a
	// context derived from it would close the tab when that ends.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Every browser step is bounded, so that a hang fails rather than
	// stalls the suite.
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// value runs one action that returns a value.
	value := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("no failure screenshot: %v", err)
			return
		}
		p := filepath.Join(artifactDir(t), "mdt-failure-"+strings.ReplaceAll(t.Name(), "/", "_")+".png")
		if err := os.WriteFile(p, png, 0o644); err == nil {
			t.Logf("failure screenshot: %s", p)
		}
		t.Logf("gateway logs:\n%s", logs)
	})
	// liveWithin waits, in the page, for a condition to hold after a
	// change, for at most liveDeadline, and checks that the page was not
	// reloaded meanwhile.
	liveWithin := func(what, cond string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(liveDeadline), chromedp.WithPollingInterval(25*time.Millisecond))); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#mdt-live")))
			t.Fatalf("%s did not appear on the open page within %s: %v\npage shows:\n%s", what, liveDeadline, err, body)
		}
		same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__mdtPage === 'not reloaded'`))
		if err != nil || !same {
			t.Fatalf("%s: the page was reloaded (err %v); it must update in place", what, err)
		}
	}
	// open navigates to a page, marks it (to tell a reload) and waits for
	// its event stream.
	open := func(path string) {
		t.Helper()
		step("open "+path, chromedp.Navigate(base+path),
			chromedp.WaitVisible(chromedp.CSS("#maincontent")),
			chromedp.Evaluate[chromedp.Void](`window.__mdtPage = 'not reloaded'`),
			chromedp.Poll[chromedp.Void](`document.body.dataset.live === 'connected'`, chromedp.WithPollingTimeout(20*time.Second)))
	}
	axeCheck := func(page string) {
		t.Helper()
		type violation struct {
			ID     string `json:"id"`
			Impact string `json:"impact"`
			Help   string `json:"help"`
			Nodes  []struct {
				Target []any `json:"target"`
			} `json:"nodes"`
		}
		run := `axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})
			.then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical'))`
		step("load axe on "+page, chromedp.Evaluate[chromedp.Void](string(axeJS)))
		ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
		defer cancel()
		violations, err := chromedp.Run(ctx, chromedp.Evaluate[[]violation](run, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe on %s: %v", page, err)
		}
		for _, v := range violations {
			b, _ := json.Marshal(v.Nodes)
			t.Errorf("axe on %s: %s (%s): %s at %s", page, v.ID, v.Impact, v.Help, b)
		}
	}
	screenshot := func(name string) {
		t.Helper()
		if *mdtScreenshots == "" {
			return
		}
		ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*mdtScreenshots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Signing in: the board asks for it; with --dev-auth, one click.
	step("sign-in page", chromedp.Navigate(base+"/mdt"), chromedp.WaitVisible(chromedp.CSS(`textarea#token`)))
	title := value("sign-in form", chromedp.Title())
	if !strings.HasPrefix(title, "Sign in") {
		t.Fatalf("/mdt without a session shows %q, want the sign-in page", title)
	}
	axeCheck("the sign-in page")
	step("sign in as dev-mdt", chromedp.Click(chromedp.Search(`//button[contains(., "Sign in as dev-mdt")]`)),
		chromedp.WaitVisible(chromedp.CSS(`#group-waiting`)))

	open("/mdt")
	// 1. A GP practice of the MDT refers someone (FHIR): they appear on
	// the open board.
	fixture, err := os.ReadFile(filepath.Join("..", "..", "testdata", "fhir", "r4", "bundle-referral-transaction.json"))
	if err != nil {
		t.Fatal(err)
	}
	tx := api.must(http.StatusOK, gpTok, http.MethodPost, "/fhir", "application/fhir+json", fixture, nil)
	var bundle struct {
		Entry []struct {
			Resource struct {
				ResourceType, ID string
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(tx, &bundle); err != nil {
		t.Fatal(err)
	}
	var sr, task string
	for _, e := range bundle.Entry {
		switch e.Resource.ResourceType {
		case "ServiceRequest":
			sr = e.Resource.ID
		case "Task":
			task = e.Resource.ID
		}
	}
	row := fmt.Sprintf(`document.querySelector('#group-waiting') && document.querySelector('section[aria-labelledby="group-waiting"] tr[data-referral=%q]')`, sr)
	liveWithin("a new referral (POST /fhir)", row+` !== null`)

	// 2. The service accepts it (/sp/v1): the board says so.
	sp := "/sp/v1/referrals/" + sr
	at := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	api.must(http.StatusOK, spTok, http.MethodPost, sp+"/actions", "application/json",
		fmt.Appendf(nil, `{"action":"accept","linkWorker":{"id":"lw-17","name":"Sam Link"},"at":%q}`, at.Format(time.RFC3339)), nil)
	liveWithin("the acceptance (/sp/v1)", fmt.Sprintf(`(document.querySelector('tr[data-referral=%q]')||{}).textContent.includes('Sam Link')`, sr))
	axeCheck("the board")

	// 3. The person's page, open: a contact recorded through /sp/v1
	// appears within 2 s (the test), then a measure, a plan.
	open("/mdt/people/" + sr)
	api.must(http.StatusCreated, spTok, http.MethodPost, sp+"/contacts", "application/json",
		fmt.Appendf(nil, `{"at":%q,"mode":"phone","minutes":30,"attended":true}`, at.Add(10*time.Minute).Format(time.RFC3339)), nil)
	liveWithin("a contact (/sp/v1)", `[...document.querySelectorAll('.mdt-timeline__title')].some(e => e.textContent === 'Phone call')`)
	for i, items := range []string{"[2,3,3,2,3,2,3]", "[3,4,4,3,4,3,4]"} {
		tp := []string{"baseline", "review"}[i]
		api.must(http.StatusCreated, spTok, http.MethodPost, sp+"/measures", "application/json",
			fmt.Appendf(nil, `{"instrument":"SWEMWBS","timepoint":%q,"items":%s,"takenAt":%q}`, tp, items, at.Add(time.Duration(20+60*i)*time.Minute).Format(time.RFC3339)), nil)
		api.must(http.StatusCreated, spTok, http.MethodPost, sp+"/measures", "application/json",
			fmt.Appendf(nil, `{"instrument":"ONS4","timepoint":%q,"items":[%d,%d,%d,%d],"takenAt":%q}`, tp, 4+2*i, 5+2*i, 3+3*i, 7-3*i, at.Add(time.Duration(21+60*i)*time.Minute).Format(time.RFC3339)), nil)
	}
	liveWithin("the SWEMWBS trend (/sp/v1 measures)", `document.querySelectorAll('#trend-swemwbs-title').length === 1 && document.querySelectorAll('.mdt-trend').length === 2`)
	api.must(http.StatusOK, spTok, http.MethodPut, sp+"/plan", "application/json", []byte(`{"whatMatters":"Getting out of the house",
		"goals":[{"description":"Join a walking group","importance":8,"confidence":6,"status":"active"}],
		"onwardReferrals":[{"service":"Parkside walking group","status":"sent"}],"reviewDate":"2099-01-01"}`), nil)
	api.must(http.StatusOK, spTok, http.MethodPut, sp+"/consent", "application/json", []byte(`{"consent":"full"}`), nil)
	liveWithin("the plan with full consent (/sp/v1)", `document.querySelector('#mdt-live').textContent.includes('Join a walking group')`)
	text := value("read the person page", chromedp.Text(chromedp.CSS("#mdt-live")))
	for _, want := range []string{"Referred to social prescribing", "Accepted by the social prescribing service", "Phone call", "30 minutes",
		"Referral to social prescribing service", "SNOMED CT 871731000000106", "Short Warwick-Edinburgh Mental Wellbeing Scale (SWEMWBS)",
		"Score 17.43", "Score 22.35 (+4.92 since the start)", "Seeing a link worker", "Sam Link", "Everything, including notes"} {
		if !strings.Contains(text, want) {
			t.Errorf("the person page does not say %q; it shows:\n%s", want, text)
		}
	}
	for _, never := range []string{"in-progress", "virtual", "ambulatory", "T10:", sr} {
		if strings.Contains(text, never) {
			t.Errorf("the person page shows %q (a code, raw time or id, not plain words)", never)
		}
	}
	axeCheck("the person page")
	screenshot("mdt-person.png")

	// 4. A change through FHIR: the service puts the Task on hold with a
	// PUT; the open page follows.
	taskBody := api.must(http.StatusOK, spTok, http.MethodGet, "/fhir/Task/"+task, "", nil, nil)
	var taskDoc map[string]any
	if err := json.Unmarshal(taskBody, &taskDoc); err != nil {
		t.Fatal(err)
	}
	taskDoc["status"] = "on-hold"
	taskDoc["statusReason"] = map[string]any{"text": "Person in hospital"}
	put, _ := json.Marshal(taskDoc)
	api.must(http.StatusOK, spTok, http.MethodPut, "/fhir/Task/"+task, "application/fhir+json", put, nil)
	liveWithin("the Task put on hold (PUT /fhir/Task)", `document.querySelector('#mdt-live .mdt-status').textContent.trim() === 'On hold'`)

	// 5. Reports, then the board on a phone's width: no sideways scrolling.
	open("/mdt/reports")
	axeCheck("the reports page")
	open("/mdt")
	screenshot("mdt-board.png")
	step("phone width", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile), chromedp.Navigate(base+"/mdt"),
		chromedp.WaitVisible(chromedp.CSS("#maincontent")))
	if fits := value("phone width", chromedp.Evaluate[string](`String(document.documentElement.scrollWidth <= window.innerWidth)`)); fits != "true" {
		t.Error("the board scrolls sideways at a phone's width (375 px)")
	}
	axeCheck("the board at a phone's width")
	screenshot("mdt-phone.png")
}
