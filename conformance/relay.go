package conformance

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
)

// The gp-endpoint role writes exactly as linkbridge's relay does: with the
// relay's own writer (adapter/gpfhir: the write mode the endpoint's
// CapabilityStatement implies, no id in a conditional update's body,
// references rewritten to the endpoint's ids, dependency order). Its
// requests are recorded in the scenario's transcript like the kit's own.

// identities is the kit's record of where the endpoint holds each
// resource it wrote (the relay keeps the same record in its store).
type identities struct {
	mu sync.Mutex
	m  map[linkbridge.ResourceKey]linkbridge.EndpointIdentity
}

// EndpointIdentities implements linkbridge.EndpointIdentityStore.
func (s *identities) EndpointIdentities(_ context.Context, _ string, keys []linkbridge.ResourceKey) (map[linkbridge.ResourceKey]linkbridge.EndpointIdentity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[linkbridge.ResourceKey]linkbridge.EndpointIdentity{}
	for _, k := range keys {
		if id, ok := s.m[k]; ok {
			out[k] = id
		}
	}
	return out, nil
}

// RecordEndpointIdentity implements linkbridge.EndpointIdentityStore.
func (s *identities) RecordEndpointIdentity(_ context.Context, id linkbridge.EndpointIdentity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := linkbridge.ResourceKey{Type: id.ResourceType, ID: id.ResourceID}
	if cur, ok := s.m[k]; !ok || cur.Version <= id.Version {
		s.m[k] = id
	}
	return nil
}

// ForgetEndpointIdentity implements linkbridge.EndpointIdentityStore.
func (s *identities) ForgetEndpointIdentity(_ context.Context, _ string, k linkbridge.ResourceKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

// get returns the endpoint's id of linkbridge's Type/id ("" when unknown).
func (s *identities) get(typ, id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[linkbridge.ResourceKey{Type: typ, ID: id}].EndpointID
}

// reverse maps "Type/endpoint id" to linkbridge's "Type/id".
func (s *identities) reverse() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.m))
	for k, v := range s.m {
		out[k.Type+"/"+v.EndpointID] = k.Type + "/" + k.ID
	}
	return out
}

// recorder sends the relay's requests with the kit's HTTP client and
// headers, recording each in the scenario's transcript.
type recorder struct {
	t *T
}

func (rt recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	k := rt.t.kit
	for name, vals := range k.cfg.Header {
		for _, v := range vals {
			req.Header.Add(name, v)
		}
	}
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	ex := &Exchange{Method: req.Method, URL: req.URL.String(), RequestHeaders: flatHeaders(req.Header, true), RequestBody: clip(body)}
	rt.t.last = ex
	rt.t.requests++
	tr := k.cfg.Client.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	ex.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		ex.Error = err.Error()
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	ex.Status, ex.ResponseHeaders, ex.ResponseBody = resp.StatusCode, flatHeaders(resp.Header, false), clip(b)
	if err != nil {
		ex.Error = err.Error()
	}
	return resp, nil
}

// relay returns the relay's writer for this scenario, recording into t.
func (t *T) relay() *gpfhir.Sender {
	g := t.kit.gp()
	c, err := gpfhir.New(gpfhir.Config{BaseURL: t.kit.cfg.Target, Mode: gpfhir.ModeAuto, Transport: recorder{t},
		RetryMax: 0, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("kit error: %v", err)
	}
	return &gpfhir.Sender{Client: c, Codec: t.kit.codec, Identities: g.identities}
}

// send writes one shape as the relay does, and fails the scenario, naming
// the shape and the endpoint's answer, when the endpoint refuses it.
func (t *T) send(s *gpfhir.Sender, sh Shape) int {
	status, err := s.Send(t.ctx, &linkbridge.OutboxMessage{ResourceType: sh.Type, ResourceID: sh.ID, Version: sh.Version, Body: sh.Body})
	if err != nil {
		t.Fatalf("the relay's write of %s/%s (version %d) was not accepted: %v", sh.Type, sh.ID, sh.Version, err)
	}
	return status
}
