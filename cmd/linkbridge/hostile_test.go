package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
)

// hostileRequest is one entry of testdata/hostile/requests.json.
type hostileRequest struct {
	Name    string            `json:"name"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	BodyHex string            `json:"bodyHex"`
}

// expand replaces the placeholders of the corpus: {referral}, {task},
// {patient}, and "REPEAT:s:n" (s n times).
func expand(s string, ids map[string]string) string {
	if rest, ok := strings.CutPrefix(s, "REPEAT:"); ok {
		unit, n, _ := strings.Cut(rest, ":")
		var count int
		_, _ = fmt.Sscan(n, &count)
		return strings.Repeat(unit, count)
	}
	for k, v := range ids {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return s
}

// latin1 turns a header value written with code points below 256 into
// those bytes, so the corpus can send bytes that are not UTF-8.
func latin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return s
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// TestHostileCorpus sends every request of testdata/hostile/requests.json
// to serve on SQLite and on PostgreSQL: none may answer 5xx, every one is
// refused with an OperationOutcome (/fhir) or the JSON error (/sp/v1), and
// nothing is stored (counts and the referral's version unchanged).
func TestHostileCorpus(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/hostile/requests.json")
	if err != nil {
		t.Fatal(err)
	}
	var corpus struct {
		Requests []hostileRequest `json:"requests"`
	}
	if err := json.Unmarshal(raw, &corpus); err != nil {
		t.Fatal(err)
	}
	backends := map[string][]string{"sqlite": nil}
	if os.Getenv("LINKBRIDGE_TEST_POSTGRES_URL") != "" || os.Getenv("CI") == "true" {
		backends["postgres"] = []string{"--db", pgtest.NewSchema(t)}
	}
	for name, args := range backends {
		t.Run(name, func(t *testing.T) {
			addr, _ := startServe(t, append([]string{"--dev", "--service-ods", "Y02662"}, args...)...)
			base := "http://" + addr
			ids := seedReferral(t, base)
			before := storeCounts(t, base, ids["referral"])
			for _, hr := range corpus.Requests {
				body := []byte(expand(hr.Body, ids))
				if hr.BodyHex != "" {
					if body, err = hex.DecodeString(hr.BodyHex); err != nil {
						t.Fatal(err)
					}
				}
				req, err := http.NewRequest(hr.Method, base+expand(hr.Path, ids), bytes.NewReader(body))
				if err != nil {
					t.Fatalf("%s: %v", hr.Name, err)
				}
				for k, v := range hr.Headers {
					req.Header.Set(k, latin1(expand(v, ids)))
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", hr.Name, err)
				}
				got, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					t.Errorf("%s: %d, want a 4xx refusal: %.300s", hr.Name, resp.StatusCode, got)
					continue
				}
				var doc map[string]any
				if err := json.Unmarshal(got, &doc); err != nil {
					t.Errorf("%s: %d with a body that is not JSON: %.300s", hr.Name, resp.StatusCode, got)
					continue
				}
				if strings.HasPrefix(hr.Path, "/sp/v1") && doc["code"] == nil && doc["resourceType"] != "OperationOutcome" ||
					!strings.HasPrefix(hr.Path, "/sp/v1") && doc["resourceType"] != "OperationOutcome" {
					t.Errorf("%s: %d without an OperationOutcome or JSON error: %.300s", hr.Name, resp.StatusCode, got)
				}
			}
			if after := storeCounts(t, base, ids["referral"]); after != before {
				t.Errorf("the corpus changed the store: before %+v, after %+v", before, after)
			}
		})
	}
}

// seedReferral stores the corpus referral and returns its ids.
func seedReferral(t *testing.T, base string) map[string]string {
	t.Helper()
	body, err := os.ReadFile("../../testdata/fhir/r4/bundle-referral-transaction.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/fhir", "application/fhir+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var b struct {
		Entry []struct {
			Response struct {
				Location string `json:"location"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("seed: %d %v", resp.StatusCode, err)
	}
	ids := map[string]string{}
	for _, e := range b.Entry {
		parts := strings.Split(e.Response.Location, "/")
		switch parts[0] {
		case "Patient":
			ids["patient"] = parts[1]
		case "ServiceRequest":
			ids["referral"] = parts[1]
		case "Task":
			ids["task"] = parts[1]
		}
	}
	return ids
}

// counts is what a refusal must leave as it was.
type counts struct {
	Resources map[string]float64
	Version   float64
}

func (c counts) key() string { return fmt.Sprint(c.Resources, c.Version) }

// storeCounts counts the stored resources of the types the corpus could
// write, and reads the referral's version.
func storeCounts(t *testing.T, base, referral string) string {
	t.Helper()
	c := counts{Resources: map[string]float64{}}
	get := func(path string) map[string]any {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var d map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return d
	}
	for _, typ := range []string{"Patient", "ServiceRequest", "Task", "Encounter", "Observation", "CarePlan", "Goal"} {
		total, _ := get("/fhir/" + typ + "?_total=accurate")["total"].(float64)
		c.Resources[typ] = total
	}
	ref, _ := get("/sp/v1/referrals/" + referral)["referral"].(map[string]any)
	c.Version, _ = ref["version"].(float64)
	if c.Version == 0 {
		t.Fatalf("the referral %s has no version", referral)
	}
	return c.key()
}
