package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirxml"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/fhirmap"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	cspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/capability_statement_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
	tpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

// xmlResponse is one HTTP answer of the FHIR API and the format its body
// came in; Resource is decoded from JSON, or from XML by way of
// fhirxml.ToJSON.
type xmlResponse struct {
	response
	XML bool // the body was FHIR XML
}

// doAny sends a request like do but takes an answer in either format: the
// Content-Type must be FHIR JSON or FHIR XML (XML is converted back with
// fhirxml.ToJSON and must then decode and validate like JSON).
func (ts *testServer) doAny(method, path string, body []byte, h hdr) *xmlResponse {
	ts.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		ts.t.Fatalf("new request: %v", err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	out := &xmlResponse{response: response{Status: resp.StatusCode, Header: resp.Header, Body: b}}
	if len(b) == 0 {
		return out
	}
	switch ct := resp.Header.Get("Content-Type"); ct {
	case "application/fhir+json; charset=utf-8":
		out.Resource = ts.mustFHIR(b, method+" "+path)
	case httpapi.ContentTypeFHIRXML:
		out.XML = true
		j, err := fhirxml.ToJSON(b)
		if err != nil {
			ts.t.Fatalf("%s %s: the XML answer does not convert to JSON: %v\nbody: %s", method, path, err, b)
		}
		out.Resource = ts.mustFHIR(j, method+" "+path+" (XML)")
	default:
		ts.t.Fatalf("%s %s: Content-Type = %q, want FHIR JSON or XML; body: %s", method, path, ct, b)
	}
	return out
}

// toXML converts a FHIR JSON fixture to FHIR XML.
func toXML(t testing.TB, j []byte) []byte {
	t.Helper()
	x, err := fhirxml.FromJSON(j)
	if err != nil {
		t.Fatalf("fhirxml.FromJSON: %v", err)
	}
	return x
}

// sameFHIR fails the test unless two answers carry the same resource.
func sameFHIR(t *testing.T, what string, got, want *response, opts ...cmp.Option) {
	t.Helper()
	if diff := cmp.Diff(want.Resource, got.Resource, append(opts, protocmp.Transform())...); diff != "" {
		t.Errorf("%s: resource differs (-want +got):\n%s", what, diff)
	}
}

// TestXMLReferralTransaction posts the referral transaction as JSON to one
// gateway and as XML (the indented XML fixture, as a client would write it)
// to another with the same ids and clock: both must answer the same
// transaction-response (in XML for the XML client) and store the same
// resources, as JSON.
func TestXMLReferralTransaction(t *testing.T) {
	t.Parallel()
	ids := func() func() string {
		n := 0
		return func() string { n++; return fmt.Sprintf("id-%04d", n) }
	}
	viaJSON := newTestServer(t, func(s *httpapi.Server) { s.NewID = ids() })
	viaXML := newTestServer(t, func(s *httpapi.Server) { s.NewID = ids() })
	body, xmlBody := mustRead(t, fixReferralTxn), mustRead(t, fixReferralXML)
	// The XML fixture is the JSON one in XML.
	j, err := fhirxml.ToJSON(xmlBody)
	if err != nil {
		t.Fatalf("fhirxml.ToJSON(%s): %v", fixReferralXML, err)
	}
	if diff := cmp.Diff(viaJSON.mustFHIR(body, "JSON fixture"), viaJSON.mustFHIR(j, "XML fixture"), protocmp.Transform()); diff != "" {
		t.Fatalf("%s differs from %s (-JSON +XML):\n%s", fixReferralXML, fixReferralTxn, diff)
	}

	want := viaJSON.doAny(http.MethodPost, "", body, hdr{"Content-Type": "application/fhir+json"})
	got := viaXML.doAny(http.MethodPost, "", xmlBody, hdr{"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"})
	bundle(t, &want.response, "transaction-response")
	bundle(t, &got.response, "transaction-response")
	if want.XML || !got.XML {
		t.Fatalf("answers in XML: JSON client %v, XML client %v; want false, true", want.XML, got.XML)
	}
	// fullUrl names each server's own base URL.
	sameFHIR(t, "transaction-response", &got.response, &want.response, protocmp.IgnoreFields(&rpb.Bundle_Entry{}, "full_url"))

	ctx := context.Background()
	stored := 0
	for _, typ := range fhirmap.SearchTypes() {
		q := &linkbridge.ResourceQuery{Type: typ, Count: 100}
		g, err := viaXML.Store.SearchResources(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		w, err := viaJSON.Store.SearchResources(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Resources) != len(w.Resources) {
			t.Fatalf("%s: %d stored from XML, %d from JSON", typ, len(g.Resources), len(w.Resources))
		}
		for i, r := range g.Resources {
			if r.ID != w.Resources[i].ID || r.VersionID != w.Resources[i].VersionID {
				t.Fatalf("%s[%d]: stored %s/%d from XML, %s/%d from JSON", typ, i, r.ID, r.VersionID, w.Resources[i].ID, w.Resources[i].VersionID)
			}
			if diff := cmp.Diff(viaJSON.mustFHIR(w.Resources[i].Body, "from JSON"), viaXML.mustFHIR(r.Body, "from XML"), protocmp.Transform()); diff != "" {
				t.Errorf("%s/%s stored from XML differs (-from JSON +from XML):\n%s", typ, r.ID, diff)
			}
			stored++
		}
	}
	if stored < 3 {
		t.Errorf("%d resources stored, want the referral's Patient, ServiceRequest, Task and more", stored)
	}
}

// TestXMLNegotiation reads one Task in every way a client can ask for a
// format: _format beats Accept, Accept q-values choose, */* and no Accept
// mean JSON. An XML answer must mean what the JSON one does, with the same
// ETag and Last-Modified.
func TestXMLNegotiation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	created := ts.post("/Task", mustRead(t, fixTaskContained), nil)
	wantStatus(t, created, http.StatusCreated)
	task, ok := created.Resource.(*tpb.Task)
	if !ok {
		t.Fatalf("POST /Task answered %T, want Task", created.Resource)
	}
	path := "/Task/" + task.GetId().GetValue()
	want := ts.doAny(http.MethodGet, path, nil, hdr{"Accept": "application/fhir+json"})
	wantStatus(t, &want.response, http.StatusOK)

	tests := []struct {
		name    string
		query   string
		accept  string
		wantXML bool
	}{
		{"NoAccept", "", "", false},
		{"AnyType", "", "*/*", false},
		{"FHIRJSON", "", "application/fhir+json", false},
		{"FHIRXML", "", "application/fhir+xml", true},
		{"FHIRXMLVersion", "", "application/fhir+xml; fhirVersion=4.0", true},
		{"PlainXML", "", "application/xml", true},
		{"TextXML", "", "text/xml", true},
		{"TextAny", "", "text/*", true},
		{"BrowserLike", "", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
		{"XMLPreferred", "", "application/fhir+json;q=0.5, application/fhir+xml", true},
		{"JSONPreferred", "", "application/fhir+xml;q=0.5, application/fhir+json", false},
		{"Tie", "", "application/fhir+xml, application/fhir+json", false},
		{"JSONRefused", "", "application/fhir+json;q=0, application/json;q=0, application/*", true},
		{"FormatXMLBeatsAccept", "_format=xml", "application/fhir+json", true},
		{"FormatJSONBeatsAccept", "_format=json", "application/fhir+xml", false},
		{"FormatMediaType", "_format=application%2Ffhir%2Bxml", "", true},
		{"FormatUnescapedPlus", "_format=application/fhir+xml", "", true},
		{"FormatTextXML", "_format=text/xml", "application/json", true},
		{"FormatFHIRJSON", "_format=application/fhir%2Bjson", "text/xml", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := path
			if tt.query != "" {
				p += "?" + tt.query
			}
			h := hdr{}
			if tt.accept != "" {
				h["Accept"] = tt.accept
			}
			got := ts.doAny(http.MethodGet, p, nil, h)
			wantStatus(t, &got.response, http.StatusOK)
			if got.XML != tt.wantXML {
				t.Fatalf("answer in XML = %v, want %v", got.XML, tt.wantXML)
			}
			sameFHIR(t, "GET "+p, &got.response, &want.response)
			for _, k := range []string{"ETag", "Last-Modified"} {
				if got.Header.Get(k) != want.Header.Get(k) || got.Header.Get(k) == "" {
					t.Errorf("%s = %q, want %q as in JSON", k, got.Header.Get(k), want.Header.Get(k))
				}
			}
		})
	}
}

// TestXMLAnswers checks that every kind of FHIR answer comes in XML when
// XML is asked for: a search Bundle, history, the CapabilityStatement,
// errors, a create with Prefer: return=OperationOutcome; and that the
// API's own non-FHIR routes stay as they are.
func TestXMLAnswers(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	bundle(t, ts.post("", mustRead(t, fixReferralTxn), nil), "transaction-response")
	xmlAccept := hdr{"Accept": "application/fhir+xml"}

	for _, path := range []string{"/Task", "/Patient?identifier=" + linkbridge.NHSNumberSystem + "|" + nhsReferralTxn, "/Task?_include=Task:focus&_include=Task:patient"} {
		want := ts.doAny(http.MethodGet, path, nil, nil)
		got := ts.doAny(http.MethodGet, path, nil, xmlAccept)
		b := bundle(t, &got.response, "searchset")
		if !got.XML || len(b.GetEntry()) == 0 {
			t.Errorf("GET %s: XML %v with %d entries, want XML with entries", path, got.XML, len(b.GetEntry()))
		}
		// A searchset gets a new id each time.
		sameFHIR(t, "GET "+path, &got.response, &want.response, protocmp.IgnoreFields(&rpb.Bundle{}, "id"))
	}

	meta := ts.doAny(http.MethodGet, "/metadata?_format=xml", nil, nil)
	wantStatus(t, &meta.response, http.StatusOK)
	cs, ok := meta.Resource.(*cspb.CapabilityStatement)
	if !meta.XML || !ok {
		t.Fatalf("GET /metadata?_format=xml: XML %v, %T; want an XML CapabilityStatement", meta.XML, meta.Resource)
	}
	var formats []string
	for _, f := range cs.GetFormat() {
		formats = append(formats, f.GetValue())
	}
	if want := []string{"application/fhir+json", "json", "application/fhir+xml", "xml"}; !cmp.Equal(formats, want) {
		t.Errorf("CapabilityStatement.format = %q, want %q", formats, want)
	}

	errs := []struct {
		name           string
		method, path   string
		body           []byte
		h              hdr
		status         int
		code, mentions string
	}{
		{"NotFound", http.MethodGet, "/Task/does-not-exist", nil, xmlAccept, http.StatusNotFound, "not-found", ""},
		{"NoSuchEndpoint", http.MethodGet, "/Task/a/b/c/d?_format=xml", nil, nil, http.StatusNotFound, "not-found", ""},
		{"MalformedXML", http.MethodPost, "/ServiceRequest", []byte(`<ServiceRequest xmlns="http://hl7.org/fhir"><status value="active"/>`),
			hdr{"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"}, http.StatusBadRequest, "invalid", ""},
		{"UnknownXMLElement", http.MethodPost, "/ServiceRequest", []byte(`<ServiceRequest xmlns="http://hl7.org/fhir"><PatientInstruction value="x"/></ServiceRequest>`),
			hdr{"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"}, http.StatusBadRequest, "invalid", "ServiceRequest.PatientInstruction"},
		{"ValidatedAsJSON", http.MethodPost, "/ServiceRequest", []byte(`<ServiceRequest xmlns="http://hl7.org/fhir"><intent value="order"/><subject><reference value="Patient/1"/></subject></ServiceRequest>`),
			hdr{"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"}, http.StatusBadRequest, "required", "status"},
		{"BusinessRule", http.MethodPost, "/Task", toXML(t, mustRead(t, fixTaskPlan)),
			hdr{"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"}, http.StatusUnprocessableEntity, "processing", "Task.intent"},
		{"UnsupportedMediaType", http.MethodPost, "/Task", mustRead(t, fixTaskContained), hdr{"Content-Type": "text/plain", "Accept": "text/xml"}, http.StatusUnsupportedMediaType, "not-supported", ""},
		{"MethodNotAllowed", http.MethodDelete, "/Task/x?_format=xml", nil, nil, http.StatusMethodNotAllowed, "not-supported", ""},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.doAny(tt.method, tt.path, tt.body, tt.h)
			if !r.XML {
				t.Errorf("error answered in JSON, want XML: %s", r.Body)
			}
			wantOutcome(t, &r.response, tt.status, tt.code, tt.mentions)
		})
	}

	t.Run("PreferOperationOutcome", func(t *testing.T) {
		r := ts.doAny(http.MethodPost, "/Task", toXML(t, withIdentifier(t, mustRead(t, fixTaskContained), "xml-prefer")),
			hdr{"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml", "Prefer": "return=OperationOutcome"})
		wantStatus(t, &r.response, http.StatusCreated)
		if _, ok := r.Resource.(*oopb.OperationOutcome); !ok || !r.XML {
			t.Errorf("answer is %T (XML %v), want an XML OperationOutcome", r.Resource, r.XML)
		}
		if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "Task/") || r.Header.Get("ETag") != `W/"1"` {
			t.Errorf("Location %q, ETag %q; want Task/... and W/\"1\"", loc, r.Header.Get("ETag"))
		}
	})

	t.Run("PreferMinimal", func(t *testing.T) {
		r := ts.doAny(http.MethodPost, "/Task", toXML(t, withIdentifier(t, mustRead(t, fixTaskContained), "xml-minimal")),
			hdr{"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml", "Prefer": "return=minimal"})
		wantStatus(t, &r.response, http.StatusCreated)
		if len(r.Body) != 0 || r.Header.Get("Location") == "" {
			t.Errorf("body %q, Location %q; want no body and a Location", r.Body, r.Header.Get("Location"))
		}
	})

	t.Run("NonFHIRRoutes", func(t *testing.T) {
		base := strings.TrimSuffix(ts.URL, "/fhir")
		for _, p := range []string{"/healthz", "/readyz", "/sp/v1/referrals"} {
			req, err := http.NewRequest(http.MethodGet, base+p+"?_format=xml", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "application/fhir+xml")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "xml") || resp.StatusCode == http.StatusNotAcceptable {
				t.Errorf("GET %s asking for XML: %d %q, want its usual answer", p, resp.StatusCode, ct)
			}
		}
	})
}
