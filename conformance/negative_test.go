package conformance_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge/conformance"
	"github.com/linkbridge/linkbridge/refgp"
)

// faulty puts a deliberately broken proxy in front of a real target.
func faulty(t *testing.T, target string, fault func(w http.ResponseWriter, r *http.Request, next http.Handler)) string {
	t.Helper()
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fault(w, r, proxy) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

func result(t *testing.T, rep *conformance.Report, id string) conformance.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result for %s", id)
	return conformance.Result{}
}

// TestKitDetectsFaults: each broken target makes the scenario that checks
// the broken behaviour fail, with the reason and the failing exchange.
func TestKitDetectsFaults(t *testing.T) {
	gp := startRefGP(t, refgp.Options{AllowClientIDs: true})
	// A strict endpoint: the kit writes conditionally, on _tag for a
	// Provenance (GPDropsTags).
	gpCond := startRefGP(t, refgp.Options{})
	lb := startLinkbridge(t)
	for _, tc := range []struct {
		name     string
		base     string
		role     conformance.Role
		run      string
		fault    func(w http.ResponseWriter, r *http.Request, next http.Handler)
		scenario string
		reason   string
	}{
		{"GPIgnoresIfMatch", gp, conformance.RoleGPEndpoint, "^gp-(capability|write-goal|if-match)",
			func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				r.Header.Del("If-Match")
				next.ServeHTTP(w, r)
			},
			"gp-if-match", "412"},
		{"GPAcceptsInvalidContent", gp, conformance.RoleGPEndpoint, "^gp-(capability|invalid)",
			func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "-invalid") {
					w.Header().Set("Content-Type", "application/fhir+json")
					w.WriteHeader(http.StatusCreated)
					return
				}
				next.ServeHTTP(w, r)
			},
			"gp-invalid-refused", "got 201"},
		{"GPDuplicatesWrites", gp, conformance.RoleGPEndpoint, "^gp-(capability|write-encounter)",
			func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				// Every PUT becomes a create with a server id: not idempotent.
				if r.Method == http.MethodPut {
					r.Method = http.MethodPost
					r.URL.Path = r.URL.Path[:strings.LastIndex(r.URL.Path, "/")]
					r.URL.RawQuery = ""
				}
				next.ServeHTTP(w, r)
			},
			"gp-write-encounter", "twice left one resource"},
		{"GPDropsTags", gpCond, conformance.RoleGPEndpoint, "^gp-(capability|write-provenance)",
			func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				// An endpoint that does not keep a sender's meta.tag: the
				// conditional update on _tag never matches, so a resent
				// Provenance becomes a second one (and neither is found).
				if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/Provenance") {
					b, _ := io.ReadAll(r.Body)
					var doc map[string]any
					_ = json.Unmarshal(b, &doc)
					delete(doc, "meta")
					b, _ = json.Marshal(doc)
					r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
				}
				next.ServeHTTP(w, r)
			},
			"gp-write-provenance", "twice left one resource"},
		{"GPDisregardsConditionalUpdateID", gpCond, conformance.RoleGPEndpoint, "^gp-(capability|id-semantics)",
			func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				// A proxy that drops the id of every conditional update:
				// a write whose id names another resource than the one
				// matched is silently re-targeted instead of refused.
				if r.Method == http.MethodPut && r.URL.RawQuery != "" {
					b, _ := io.ReadAll(r.Body)
					var doc map[string]any
					_ = json.Unmarshal(b, &doc)
					delete(doc, "id")
					b, _ = json.Marshal(doc)
					r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
				}
				next.ServeHTTP(w, r)
			},
			"gp-id-semantics", "got 200"},
		{"GPCreatesWithClientIDs", gpCond, conformance.RoleGPEndpoint, "^gp-(capability|id-semantics)",
			func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				// A proxy that turns a refused update-as-create into a
				// create: the endpoint declares no updateCreate, yet a PUT
				// of an id it does not hold succeeds.
				if r.Method == http.MethodPut && r.URL.RawQuery == "" && strings.Contains(r.URL.Path, "-fresh") {
					r.Method = http.MethodPost
					r.URL.Path = r.URL.Path[:strings.LastIndex(r.URL.Path, "/")]
				}
				next.ServeHTTP(w, r)
			},
			"gp-id-semantics", "does not hold"},
		{"ReceiverReturnsInvalidFHIR", lb, conformance.RoleReceiver, "^transaction-referral$",
			func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/Task/") {
					rec := httptest.NewRecorder()
					next.ServeHTTP(rec, r)
					b := bytes.Replace(rec.Body.Bytes(), []byte(`"resourceType":"Task"`), []byte(`"resourceType":"Task","colour":"red"`), 1)
					w.Header().Set("Content-Type", "application/fhir+json")
					w.WriteHeader(rec.Code)
					_, _ = w.Write(b)
					return
				}
				next.ServeHTTP(w, r)
			},
			"transaction-referral", "google/fhir"},
		{"ReceiverIgnoresIfMatch", lb, conformance.RoleReceiver, "^gp-cancel$",
			func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				r.Header.Del("If-Match")
				next.ServeHTTP(w, r)
			},
			"gp-cancel", "412"},
		{"ReceiverStoresInvalidReferral", lb, conformance.RoleReceiver, "^invalid-task-intent-plan$",
			func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				// A receiver that "fixes" bad input instead of refusing it.
				if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Task") {
					b, _ := io.ReadAll(r.Body)
					b = bytes.Replace(b, []byte(`"intent":"plan"`), []byte(`"intent":"order"`), 1)
					r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
				}
				next.ServeHTTP(w, r)
			},
			"invalid-task-intent-plan", "OperationOutcome"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := faulty(t, tc.base, tc.fault)
			rep, out := runKit(t, conformance.Config{Target: target + "/fhir", Role: tc.role, Run: tc.run,
				SPBase: tc.base + "/sp/v1"})
			if rep.OK() {
				t.Fatalf("the kit passed a broken target:\n%s", out)
			}
			res := result(t, rep, tc.scenario)
			if res.Status != conformance.Fail || !strings.Contains(res.Reason, tc.reason) || res.Failed == nil {
				t.Fatalf("%s: status %s reason %q exchange %v; want a failure mentioning %q with the exchange\n%s",
					tc.scenario, res.Status, res.Reason, res.Failed != nil, tc.reason, out)
			}
			if !strings.Contains(out, "FAIL") || !strings.Contains(out, "reason: ") || !strings.Contains(out, "> "+res.Failed.Method) {
				t.Errorf("the terminal output does not show the failure with its request:\n%s", out)
			}
		})
	}
}

// TestReports: the JUnit and JSON reports carry the counts, each scenario,
// the failure reason and the request/response that failed.
func TestReports(t *testing.T) {
	gp := startRefGP(t, refgp.Options{AllowClientIDs: true})
	target := faulty(t, gp, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		r.Header.Del("If-Match")
		next.ServeHTTP(w, r)
	})
	rep, _ := runKit(t, conformance.Config{Target: target + "/fhir", Role: conformance.RoleGPEndpoint, Run: "^gp-(capability|write-goal|if-match|history)"})
	if rep.Failed != 1 || rep.Passed != 2 || rep.Skipped != 1 {
		t.Fatalf("passed %d failed %d skipped %d, want 2/1/1", rep.Passed, rep.Failed, rep.Skipped)
	}

	var jx bytes.Buffer
	if err := rep.WriteJUnit(&jx); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(jx.Bytes(), &suites); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, jx.String())
	}
	if len(suites.Suites) != 1 || suites.Tests != 4 || suites.Failures != 1 {
		t.Fatalf("JUnit counts: %+v", suites)
	}
	s := suites.Suites[0]
	if s.Name != "linkbridge-conformance.gp-endpoint" || s.Tests != 4 || s.Failures != 1 || s.Skipped != 1 || len(s.Cases) != 4 {
		t.Fatalf("JUnit suite: %s tests %d failures %d skipped %d cases %d", s.Name, s.Tests, s.Failures, s.Skipped, len(s.Cases))
	}
	var failed int
	for _, c := range s.Cases {
		if c.Failure != nil {
			failed++
			if !strings.HasPrefix(c.Name, "gp-if-match") || !strings.Contains(c.Failure.Message, "412") ||
				!strings.Contains(c.Failure.Text, "> PUT ") || !strings.Contains(c.Failure.Text, "If-Match") || !strings.Contains(c.Failure.Text, "< 200") {
				t.Errorf("JUnit failure of %s does not carry reason and exchange:\n%s", c.Name, c.Failure.Text)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d failed testcases, want 1", failed)
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back conformance.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse: %v", err)
	}
	if back.Role != conformance.RoleGPEndpoint || back.Failed != 1 || len(back.Results) != 4 || back.Target != target+"/fhir" {
		t.Fatalf("JSON report: %+v", back)
	}
	f := result(t, &back, "gp-if-match")
	if f.Failed == nil || f.Failed.Method != http.MethodPut || f.Failed.Status != http.StatusOK || f.Failed.RequestBody == "" || len(f.Steps) == 0 {
		t.Errorf("JSON failure lacks the exchange or the passed steps: %+v", f)
	}
}
