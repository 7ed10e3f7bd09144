package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
)

// The OpenAPI document of /sp/v1 is kept in sync with the code by these
// tests: it is a valid OpenAPI 3 document, it names exactly the routes the
// router serves with the same methods, and every exchange of the journey
// tests (ts.sp) matches it.

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPIDocument())
	if err != nil {
		t.Fatalf("OpenAPI document does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("OpenAPI document is not valid: %v", err)
	}
	return doc
}

// spRouteInfo is a router for one test server with the OpenAPI document,
// loaded once per server (kin-openapi documents are not shared between
// parallel tests).
type spRouteInfo struct {
	doc    *openapi3.T
	router *mux.Router
}

var spRouteInfos sync.Map // *testServer -> *spRouteInfo

func (ts *testServer) spRoutes() *spRouteInfo {
	ts.t.Helper()
	if v, ok := spRouteInfos.Load(ts); ok {
		return v.(*spRouteInfo)
	}
	router, ok := ts.API.Handler().(*mux.Router)
	if !ok {
		ts.t.Fatalf("Handler() is %T, want *mux.Router", ts.API.Handler())
	}
	info := &spRouteInfo{doc: loadOpenAPI(ts.t), router: router}
	ts.t.Cleanup(func() { spRouteInfos.Delete(ts) })
	spRouteInfos.Store(ts, info)
	return info
}

// checkOpenAPI checks one /sp/v1 exchange against the document: the
// response always (its status must be documented, its body and headers
// must match), the request when the server accepted it.
func (ts *testServer) checkOpenAPI(sent *http.Request, reqBody []byte, resp *spResponse) {
	ts.t.Helper()
	info := ts.spRoutes()
	// Match the request the way the server did: same router, same path.
	probe := httptest.NewRequest(sent.Method, sent.URL.RequestURI(), bytes.NewReader(reqBody))
	probe.Header = sent.Header.Clone()
	var m mux.RouteMatch
	if !info.router.Match(probe, &m) || m.Route == nil {
		ts.t.Errorf("%s %s: no route matches", sent.Method, sent.URL.Path)
		return
	}
	tmpl, err := m.Route.GetPathTemplate()
	if err != nil || !strings.HasPrefix(tmpl, "/sp/v1/") {
		ts.t.Errorf("%s %s: matched route %q, want an /sp/v1 route", sent.Method, sent.URL.Path, tmpl)
		return
	}
	docPath := strings.TrimPrefix(tmpl, "/sp/v1")
	item := info.doc.Paths.Value(docPath)
	if item == nil {
		ts.t.Errorf("%s %s: path %s is not in the OpenAPI document", sent.Method, sent.URL.Path, docPath)
		return
	}
	op := item.GetOperation(sent.Method)
	if op == nil {
		ts.t.Errorf("%s %s: method is not documented for %s", sent.Method, sent.URL.Path, docPath)
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    probe,
		PathParams: m.Vars,
		Route:      &routers.Route{Spec: info.doc, Path: docPath, PathItem: item, Method: sent.Method, Operation: op},
		Options:    &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	ctx := context.Background()
	if resp.Status/100 == 2 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			ts.t.Errorf("%s %s: request does not match the OpenAPI document: %v\nbody: %s", sent.Method, sent.URL.Path, err, reqBody)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.Status,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(resp.Body)),
		Options:                in.Options,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		ts.t.Errorf("%s %s: %d response does not match the OpenAPI document: %v\nbody: %s", sent.Method, sent.URL.Path, resp.Status, err, resp.Body)
	}
}

// TestOpenAPIDocument loads and validates the document, and checks that
// GET /sp/v1/openapi.json serves it unchanged.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/sp/v1" {
		t.Errorf("servers = %v, want one at /sp/v1", doc.Servers)
	}
	ts := newTestServer(t)
	r := ts.sp(http.MethodGet, "/openapi.json", nil, nil)
	wantSP(t, r, http.StatusOK)
	if !bytes.Equal(r.Body, httpapi.OpenAPIDocument()) {
		t.Errorf("GET /sp/v1/openapi.json differs from the embedded document")
	}
	// Every operation has an id, and every change documents the statuses
	// the handlers send.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
			if method == http.MethodGet {
				continue
			}
			for _, st := range []int{200, 400, 404, 409, 412, 415, 422} {
				if st == 200 && op.Responses.Status(201) != nil {
					continue
				}
				if op.Responses.Status(st) == nil {
					t.Errorf("%s %s does not document status %d", method, path, st)
				}
			}
		}
	}
}

// TestOpenAPIRoutesInSync walks the router: every /sp/v1 route and method
// is in the document, and every documented path and method is routed.
func TestOpenAPIRoutesInSync(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	router, ok := ts.API.Handler().(*mux.Router)
	if !ok {
		t.Fatalf("Handler() is %T, want *mux.Router", ts.API.Handler())
	}
	routed := map[string]bool{} // "METHOD /path"
	err := router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tmpl, err := route.GetPathTemplate()
		if err != nil || !strings.HasPrefix(tmpl, "/sp/v1/") {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // the subrouter's prefix route
		}
		for _, m := range methods {
			routed[m+" "+strings.TrimPrefix(tmpl, "/sp/v1")] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if len(routed) == 0 {
		t.Fatal("the router has no /sp/v1 routes")
	}
	documented := map[string]bool{}
	for path, item := range loadOpenAPI(t).Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	for _, k := range keys(routed) {
		if !documented[k] {
			t.Errorf("route %s is served but not in openapi.json", k)
		}
	}
	for _, k := range keys(documented) {
		if !routed[k] {
			t.Errorf("openapi.json documents %s, which is not routed", k)
		}
	}
	if !slices.Equal(keys(routed), keys(documented)) {
		t.Logf("routed: %q\ndocumented: %q", keys(routed), keys(documented))
	}
}
