package bench_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/bench"
)

const patient = `{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],"birthDate":"1950-03-01"}`

func TestParseOnlyHandler(t *testing.T) {
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	h := bench.NewParseOnlyHandler(codec)
	tests := []struct {
		name, method, ctype, body string
		want                      int
	}{
		{"round trip", http.MethodPost, "application/fhir+json", patient, http.StatusOK},
		{"plain json", http.MethodPost, "application/json; charset=utf-8", patient, http.StatusOK},
		{"not fhir", http.MethodPost, "application/fhir+json", `{"resourceType":"Nope"}`, http.StatusBadRequest},
		{"not json", http.MethodPost, "application/fhir+json", `[`, http.StatusBadRequest},
		{"wrong type", http.MethodPost, "text/plain", patient, http.StatusUnsupportedMediaType},
		{"get", http.MethodGet, "", "", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/fhir", strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
			if tt.want != http.StatusOK {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != bench.ParseOnlyContentType {
				t.Errorf("Content-Type %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got["resourceType"] != "Patient" || got["birthDate"] != "1950-03-01" {
				t.Errorf("body %s", rec.Body)
			}
		})
	}
}

func TestParseOnlyHandlerBodyLimit(t *testing.T) {
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	h := &bench.ParseOnlyHandler{Codec: codec, MaxBodyBytes: 16}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(patient))
	req.Header.Set("Content-Type", "application/fhir+json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", rec.Code)
	}
}
