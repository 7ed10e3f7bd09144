package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
)

// maxReportBody bounds a body copied into a report.
const maxReportBody = 16 << 10

// Request is one request a scenario sends.
type Request struct {
	Method string
	// URL is absolute, or a path relative to the FHIR base ("Task/1").
	URL    string
	Header map[string]string
	Body   []byte
	// JSONAPI marks a non-FHIR JSON API (linkbridge's /sp/v1): its answers
	// are not FHIR resources and are not validated as such.
	JSONAPI bool
	// AsService sends the request as the social prescribing service (with
	// Config.SPHeader) rather than as the referring GP system (Header).
	AsService bool
}

// Response is a target's answer. Doc is the parsed JSON body (nil if none).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	Doc    J
}

// J is a JSON object with small accessors.
type J map[string]any

// Str returns a string member.
func (j J) Str(k string) string {
	s, _ := j[k].(string)
	return s
}

// Obj returns an object member.
func (j J) Obj(k string) J {
	m, _ := j[k].(map[string]any)
	return m
}

// List returns the objects of an array member.
func (j J) List(k string) []J {
	a, _ := j[k].([]any)
	out := make([]J, 0, len(a))
	for _, v := range a {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// Num returns a number member (-1 if absent).
func (j J) Num(k string) int {
	f, ok := j[k].(float64)
	if !ok {
		return -1
	}
	return int(f)
}

// Do sends a request, records it, and validates with google/fhir every
// FHIR resource the target returns; a transport error or an invalid
// resource fails the scenario.
func (t *T) Do(req Request) *Response {
	k := t.kit
	u := req.URL
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		u = k.cfg.Target + "/" + strings.TrimPrefix(u, "/")
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(t.ctx, req.Method, u, body)
	if err != nil {
		t.Fatalf("building request %s %s: %v", req.Method, u, err)
	}
	if req.JSONAPI {
		hr.Header.Set("Accept", "application/json")
		if req.Body != nil {
			hr.Header.Set("Content-Type", "application/json")
		}
	} else {
		hr.Header.Set("Accept", "application/fhir+json")
		if req.Body != nil {
			hr.Header.Set("Content-Type", "application/fhir+json")
		}
	}
	for name, vals := range k.roleHeader(req.AsService) {
		for _, v := range vals {
			hr.Header.Add(name, v)
		}
	}
	for name, v := range req.Header {
		if v == "" {
			hr.Header.Del(name)
			continue
		}
		hr.Header.Set(name, v)
	}
	ex := &Exchange{Method: req.Method, URL: u, RequestHeaders: flatHeaders(hr.Header, true), RequestBody: clip(req.Body)}
	t.last = ex
	t.requests++
	start := time.Now()
	resp, err := k.cfg.Client.Do(hr)
	ex.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		ex.Error = err.Error()
		t.Fatalf("%s %s: no answer: %v", req.Method, u, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	ex.Status, ex.ResponseHeaders, ex.ResponseBody = resp.StatusCode, flatHeaders(resp.Header, false), clip(b)
	if err != nil {
		ex.Error = err.Error()
		t.Fatalf("%s %s: reading the answer: %v", req.Method, u, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		if err := json.Unmarshal(trimmed, &r.Doc); err != nil {
			t.Fatalf("%s %s: the answer is not valid JSON: %v", req.Method, u, err)
		}
	}
	if !req.JSONAPI && len(trimmed) > 0 && isJSONType(resp.Header.Get("Content-Type")) {
		if r.Doc == nil || r.Doc.Str("resourceType") == "" {
			t.Fatalf("%s %s: the answer is not a FHIR resource (no resourceType)", req.Method, u)
		}
		if _, err := k.codec.Decode(trimmed); err != nil {
			t.Fatalf("%s %s: the %s returned does not pass google/fhir validation: %s", req.Method, u, r.Doc.Str("resourceType"), describeErr(err))
		}
	}
	return r
}

func describeErr(err error) string {
	msg := linkbridge.ErrorMessage(err)
	if ex := linkbridge.ErrorExpression(err); len(ex) > 0 {
		msg += " (at " + strings.Join(ex, ", ") + ")"
	}
	if msg == "" {
		msg = err.Error()
	}
	return msg
}

func isJSONType(ct string) bool {
	return strings.Contains(ct, "json")
}

func clip(b []byte) string {
	if len(b) > maxReportBody {
		return string(b[:maxReportBody]) + fmt.Sprintf("\n... (%d bytes in all)", len(b))
	}
	return string(b)
}

// flatHeaders copies headers for a report, hiding credentials.
func flatHeaders(h http.Header, request bool) map[string]string {
	out := map[string]string{}
	for name, vals := range h {
		v := strings.Join(vals, ", ")
		if request && (strings.EqualFold(name, "Authorization") || strings.EqualFold(name, "Cookie")) {
			v = "(hidden)"
		}
		out[name] = v
	}
	return out
}

// formatExchange renders an exchange for the terminal.
func formatExchange(ex *Exchange) string {
	var b strings.Builder
	fmt.Fprintf(&b, "> %s %s\n", ex.Method, ex.URL)
	writeHeaders(&b, "> ", ex.RequestHeaders)
	if ex.RequestBody != "" {
		fmt.Fprintf(&b, "> %s\n", oneLine(ex.RequestBody, 600))
	}
	if ex.Error != "" {
		fmt.Fprintf(&b, "< (no answer: %s)\n", ex.Error)
		return b.String()
	}
	fmt.Fprintf(&b, "< %d %s\n", ex.Status, http.StatusText(ex.Status))
	writeHeaders(&b, "< ", ex.ResponseHeaders)
	if ex.ResponseBody != "" {
		fmt.Fprintf(&b, "< %s\n", oneLine(ex.ResponseBody, 1200))
	}
	return b.String()
}

func writeHeaders(b *strings.Builder, pre string, h map[string]string) {
	names := make([]string, 0, len(h))
	for n := range h {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		switch strings.ToLower(n) {
		case "content-length", "date", "accept-encoding", "user-agent":
			continue
		}
		fmt.Fprintf(b, "%s%s: %s\n", pre, n, h[n])
	}
}

func oneLine(s string, max int) string {
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(s)) == nil {
		s = buf.String()
	}
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// ExpectStatus fails unless the answer has one of the statuses.
func (t *T) ExpectStatus(r *Response, want ...int) {
	for _, w := range want {
		if r.Status == w {
			return
		}
	}
	t.Fatalf("expected HTTP %s, got %d", joinInts(want), r.Status)
}

// ExpectOutcome fails unless the answer is an error OperationOutcome with a
// status in [lo, hi] and, when element is set, an issue whose expression
// names it (case-insensitive substring).
func (t *T) ExpectOutcome(r *Response, lo, hi int, element string) {
	if r.Status < lo || r.Status > hi {
		t.Fatalf("expected HTTP %d–%d with an OperationOutcome, got %d", lo, hi, r.Status)
	}
	if r.Doc.Str("resourceType") != "OperationOutcome" {
		t.Fatalf("expected an OperationOutcome body with the %d, got %q", r.Status, r.Doc.Str("resourceType"))
	}
	var exprs, diags []string
	hasError := false
	for _, is := range r.Doc.List("issue") {
		if s := is.Str("severity"); s == "error" || s == "fatal" {
			hasError = true
		}
		diags = append(diags, is.Str("diagnostics"))
		ea, _ := is["expression"].([]any)
		for _, e := range ea {
			if s, ok := e.(string); ok {
				exprs = append(exprs, s)
			}
		}
	}
	if !hasError {
		t.Fatalf("the OperationOutcome has no issue of severity error or fatal")
	}
	if element == "" {
		return
	}
	for _, e := range exprs {
		if strings.Contains(strings.ToLower(e), strings.ToLower(element)) {
			t.Step("refused with %d and an OperationOutcome naming %s", r.Status, e)
			return
		}
	}
	// google/fhir reports a missing required element at its parent
	// ("ServiceRequest") and names the element in diagnostics.
	if len(exprs) > 0 {
		for _, d := range diags {
			if strings.Contains(strings.ToLower(d), strings.ToLower(element)) {
				t.Step("refused with %d and an OperationOutcome naming %s (expression %s, diagnostics %q)", r.Status, element, exprs[0], d)
				return
			}
		}
	}
	t.Fatalf("the OperationOutcome does not name the element %q (issue.expression %v, diagnostics %q)", element, exprs, diags)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, " or ")
}
