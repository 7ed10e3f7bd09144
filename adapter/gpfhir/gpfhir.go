// Package gpfhir is linkbridge's client of the GP-side FHIR R4 endpoint that
// receives write-backs. Every call goes through hashicorp/go-retryablehttp,
// configured for short in-process retries only: long waits (a Retry-After
// beyond MaxInProcessWait) are handed back to the outbox, which schedules
// them durably instead of parking a goroutine. Responses are classified as
// delivered, retryable (408, 429, 5xx, network errors) or permanent (any
// other 4xx, with the endpoint's OperationOutcome kept).
package gpfhir

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/outbox"
)

// Mode is how resources are written idempotently. Whatever the mode, the
// relay records the endpoint's own id of every resource it writes
// (linkbridge.EndpointIdentity) and refers to it by that id
// (docs/referral-exchange.md#write-back-identity).
type Mode string

const (
	// ModeClientID writes PUT [base]/Type/id with the gateway's stable ids
	// (update-as-create). Writing the same version twice has one effect.
	// Only for an endpoint that allows update-as-create (its
	// CapabilityStatement says updateCreate: true).
	ModeClientID Mode = "client-id"
	// ModeConditional writes PUT [base]/Type?identifier=system|Type/id with
	// no id in the body, so the endpoint matches its copy by the write-back
	// key and assigns its own id when it has none (FHIR R4
	// http.html#cond-update: no match and no id: create; one match: update
	// it). Every resource linkbridge writes back carries that key in
	// the deployment's write-back system (Config.Systems), as an identifier — or, for a type without
	// an identifier element (Provenance), as a meta.tag Coding written PUT
	// [base]/Type?_tag=system|Type/id (fhirmap.WritebackKeyParam decides
	// per type from its descriptor).
	ModeConditional Mode = "conditional"
	// ModeCreate is for an endpoint with neither update-as-create nor
	// conditional update: the first write finds the resource by its
	// write-back key (GET [base]/Type?identifier=...) and, when the endpoint
	// holds none, creates it (POST [base]/Type with If-None-Exist on the
	// key, so a resend after a lost answer does not duplicate it on an
	// endpoint that supports conditional create); later writes are plain
	// updates of the endpoint's id (PUT [base]/Type/<its id>).
	ModeCreate Mode = "create"
	// ModeAuto reads the endpoint's CapabilityStatement once and picks, per
	// resource type: client-id when the type declares updateCreate: true;
	// conditional when it declares conditionalUpdate and its searchParam
	// list (if it gives one) has the key's parameter (identifier or _tag);
	// create otherwise. A type the statement does not list (or an endpoint
	// without a statement) is written conditionally.
	ModeAuto Mode = "auto"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the GP-side FHIR base, e.g. https://gp.example.nhs.uk/fhir.
	BaseURL string
	Mode    Mode
	// Auth adds credentials to each request (nil: none).
	Auth Authorizer
	// TLS is used for https (client certificates for mutual TLS, roots).
	TLS *tls.Config
	// Transport, if set, sends every request in place of the pooled
	// transport (TLS is then the Transport's own): the conformance kit
	// records the relay's exchanges with it.
	Transport http.RoundTripper
	// Timeout bounds each attempt.
	Timeout time.Duration
	// RetryMax, RetryWaitMin and RetryWaitMax bound in-process retries.
	RetryMax                   int
	RetryWaitMin, RetryWaitMax time.Duration
	// MaxInProcessWait caps a Retry-After honoured in process; longer waits
	// are returned as *RetryableError for the outbox to schedule.
	MaxInProcessWait time.Duration
	Logger           *slog.Logger
	// Systems are the deployment's URIs (serve --system-base): the
	// write-back key is in Systems.Writeback. The zero value is the
	// default base.
	Systems fhirmap.Systems
}

// Authorizer adds credentials to an outbound request.
type Authorizer interface {
	Authorize(ctx context.Context, req *http.Request) error
}

// TokenRefresher is an Authorizer whose credentials the endpoint may refuse
// before they expire (a token revoked, or the endpoint's keys rotated).
// After a 401 the Client calls Invalidate with the refused request, then
// authorizes and sends the request once more; a second 401 is the answer
// (a permanent failure, as for an Authorizer that cannot refresh).
type TokenRefresher interface {
	Authorizer
	// Invalidate drops the cached credentials if they are the ones refused
	// carried, so that the next Authorize fetches new ones; credentials
	// already replaced (another request was refused first) are kept.
	Invalidate(refused *http.Request)
}

// BearerToken is a static bearer token Authorizer.
type BearerToken string

// Authorize sets the Authorization header.
func (t BearerToken) Authorize(_ context.Context, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+string(t))
	return nil
}

// Client writes resources to the GP-side endpoint.
type Client struct {
	cfg  Config
	http *retryablehttp.Client

	mu    sync.Mutex
	modes map[string]Mode // per resource type, from the CapabilityStatement
	caps  *capabilities
}

// New builds a Client. The retryablehttp client is configured explicitly:
// the injected logger, short in-process retries, a retry policy that also
// retries 408 and stops at long Retry-After waits, and the passthrough error
// handler so the last response (and its OperationOutcome) is kept.
func New(cfg Config) (*Client, error) {
	if _, err := url.ParseRequestURI(cfg.BaseURL); err != nil || cfg.BaseURL == "" {
		return nil, fmt.Errorf("gpfhir: base URL %q is not an absolute URL", cfg.BaseURL)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.RetryWaitMin <= 0 {
		cfg.RetryWaitMin = 100 * time.Millisecond
	}
	if cfg.RetryWaitMax <= 0 {
		cfg.RetryWaitMax = 2 * time.Second
	}
	if cfg.MaxInProcessWait <= 0 {
		cfg.MaxInProcessWait = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cleanhttp.DefaultPooledClient()
	hc.Timeout = cfg.Timeout
	if cfg.TLS != nil {
		hc.Transport.(*http.Transport).TLSClientConfig = cfg.TLS
	}
	if cfg.Transport != nil {
		hc.Transport = cfg.Transport
	}
	rc := retryablehttp.NewClient()
	rc.HTTPClient = hc
	rc.Logger = redactingLogger{cfg.Logger} // URLs without query strings: they hold NHS numbers
	rc.RetryMax, rc.RetryWaitMin, rc.RetryWaitMax = cfg.RetryMax, cfg.RetryWaitMin, cfg.RetryWaitMax
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	maxWait := cfg.MaxInProcessWait
	rc.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if notRetriedInProcess(ctx) {
			// A create, or a conditional update, that failed or went
			// unanswered may have been applied: resent at once it could
			// make a second copy. The outbox resends it later, after a
			// search by the write-back key.
			return false, nil
		}
		if resp != nil {
			if d, ok := RetryAfter(resp); ok && d > maxWait {
				return false, nil // the outbox schedules long waits
			}
			if resp.StatusCode == http.StatusRequestTimeout {
				return true, nil
			}
		}
		return retryablehttp.ErrorPropagatedRetryPolicy(ctx, resp, err)
	}
	rc.Backoff = func(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
		d := retryablehttp.LinearJitterBackoff(min, max, attempt, resp)
		if resp != nil {
			if ra, ok := RetryAfter(resp); ok && ra > d {
				d = ra
			}
		}
		if d > maxWait {
			d = maxWait
		}
		return d
	}
	if cfg.Auth != nil {
		auth := cfg.Auth
		rc.PrepareRetry = func(req *http.Request) error { return auth.Authorize(req.Context(), req) }
	}
	return &Client{cfg: cfg, http: rc, modes: map[string]Mode{}}, nil
}

// RetryableError and PermanentError are the outbox's classification of a
// failed write: retry (after After, if the endpoint said) or dead-letter
// (keeping the endpoint's OperationOutcome).
type (
	RetryableError = outbox.RetryableError
	PermanentError = outbox.PermanentError
)

// Result is a successful write.
type Result struct {
	Status int
	// Location and ETag as the endpoint answered.
	Location, ETag string
	// EndpointID and EndpointVersion are the endpoint's logical id and
	// meta.versionId of what it stored, read from Location
	// ([base]/Type/id/_history/vid), else the returned body, else (for
	// the version) the ETag; EndpointVersion is "" when it said nothing.
	EndpointID, EndpointVersion string
}

// VersionHeader carries the gateway's version of a written resource, so an
// endpoint (or a test recorder) can see that versions only move forward.
const VersionHeader = "X-Linkbridge-Version"

// Write is one resource version to write.
type Write struct {
	// Type and ID are linkbridge's; Version is linkbridge's version.
	Type, ID string
	Version  int
	// Body is the resource's GP form, references already the endpoint's.
	Body []byte
	// Known is the endpoint's id of the resource when the relay has it
	// ("" when not): ModeCreate updates it in place.
	Known string
}

// Put writes one resource version idempotently in the mode for its type
// (see Mode), with no endpoint id known.
func (c *Client) Put(ctx context.Context, typ, id string, version int, body []byte) (*Result, error) {
	return c.Write(ctx, Write{Type: typ, ID: id, Version: version, Body: body})
}

// Write writes one resource version idempotently in the mode for its type
// (see Mode) and returns where the endpoint holds it.
func (c *Client) Write(ctx context.Context, w Write) (*Result, error) {
	mode, err := c.ModeFor(ctx, w.Type)
	if err != nil {
		return nil, err
	}
	switch mode {
	case ModeClientID:
		res, err := c.send1(ctx, http.MethodPut, c.PutURL(mode, w.Type, w.ID), w, w.ID)
		if err == nil && res.EndpointID == "" {
			res.EndpointID = w.ID
		}
		return res, err
	case ModeConditional:
		res, err := c.send1(ctx, http.MethodPut, c.PutURL(mode, w.Type, w.ID), w, "")
		if err == nil && res.EndpointID == "" {
			// The endpoint said neither Location nor id: find it by its key.
			if id, ver, n, ferr := c.FindByKey(ctx, w.Type, w.ID); ferr == nil && n == 1 {
				res.EndpointID, res.EndpointVersion = id, ver
			}
		}
		return res, err
	default: // ModeCreate
		known := w.Known
		if known == "" {
			id, _, n, err := c.FindByKey(ctx, w.Type, w.ID)
			if err != nil {
				return nil, err
			}
			if n > 1 {
				return nil, &PermanentError{Err: fmt.Errorf("%d resources on the endpoint carry the write-back key of %s/%s", n, w.Type, w.ID)}
			}
			known = id
		}
		if known != "" {
			res, err := c.send1(ctx, http.MethodPut, c.cfg.BaseURL+"/"+w.Type+"/"+url.PathEscape(known), w, known)
			var pe *PermanentError
			if !errors.As(err, &pe) || (pe.Status != http.StatusNotFound && pe.Status != http.StatusGone) {
				if err == nil && res.EndpointID == "" {
					res.EndpointID = known
				}
				return res, err
			}
			// Deleted on the endpoint since: created again below.
		}
		ine := fhirmap.WritebackKeyParam(w.Type) + "=" + url.QueryEscape(c.cfg.Systems.WritebackToken(w.Type, w.ID))
		res, err := c.send1(ctx, http.MethodPost, c.cfg.BaseURL+"/"+w.Type, w, "", "If-None-Exist", ine)
		if err == nil && res.Status == http.StatusOK && res.EndpointID != "" {
			// If-None-Exist matched a copy (R4 http.html#ccreate: 200, the
			// body ignored): this version replaces it.
			id := res.EndpointID
			if res, err = c.send1(ctx, http.MethodPut, c.cfg.BaseURL+"/"+w.Type+"/"+url.PathEscape(id), w, id); err == nil && res.EndpointID == "" {
				res.EndpointID = id
			}
			return res, err
		}
		if err == nil && res.EndpointID == "" {
			if id, ver, n, ferr := c.FindByKey(ctx, w.Type, w.ID); ferr == nil && n == 1 {
				res.EndpointID, res.EndpointVersion = id, ver
			}
		}
		return res, err
	}
}

// send1 sends one write of w's body with its id set to id ("" removes
// it) and classifies the answer.
func (c *Client) send1(ctx context.Context, method, u string, w Write, id string, header ...string) (*Result, error) {
	body, err := fhirjson.ForEndpoint(w.Body, id, nil)
	if err != nil {
		return nil, &PermanentError{Err: err}
	}
	header = append(header, VersionHeader, strconv.Itoa(w.Version))
	resp, err := c.do(ctx, method, u, body, header...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // read to the end or dropped: a close error changes nothing
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		res := &Result{Status: resp.StatusCode, Location: resp.Header.Get("Location"), ETag: resp.Header.Get("ETag")}
		res.EndpointID, res.EndpointVersion = whereStored(w.Type, res.Location, res.ETag, respBody)
		return res, nil
	case isRetryableStatus(resp.StatusCode):
		after, _ := RetryAfter(resp)
		return nil, &RetryableError{Status: resp.StatusCode, After: after, Err: errors.New(http.StatusText(resp.StatusCode))}
	default:
		var oo []byte
		if looksLikeOutcome(respBody) {
			oo = respBody
		}
		return nil, &PermanentError{Status: resp.StatusCode, Outcome: oo, Err: errors.New(outcomeText(respBody, resp.StatusCode))}
	}
}

// whereStored reads the endpoint's id and version of a written resource of
// type typ: from Location ([base]/Type/id[/_history/vid], FHIR R4
// http.html#create), else from the returned resource's id and
// meta.versionId; the version else from a weak ETag W/"vid".
func whereStored(typ, location, etag string, body []byte) (id, version string) {
	if u, err := url.Parse(location); err == nil && location != "" {
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		for i := len(parts) - 2; i >= 0; i-- {
			if parts[i] == typ && validID(parts[i+1]) {
				id = parts[i+1]
				if i+3 < len(parts) && parts[i+2] == "_history" && validID(parts[i+3]) {
					version = parts[i+3]
				}
				break
			}
		}
	}
	if (id == "" || version == "") && len(body) > 0 {
		var doc struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
			Meta         struct {
				VersionID string `json:"versionId"`
			} `json:"meta"`
		}
		if json.Unmarshal(body, &doc) == nil && doc.ResourceType == typ && validID(doc.ID) && (id == "" || id == doc.ID) {
			id = doc.ID
			if version == "" && validID(doc.Meta.VersionID) {
				version = doc.Meta.VersionID
			}
		}
	}
	if version == "" {
		if v, ok := strings.CutPrefix(strings.TrimPrefix(etag, "W/"), `"`); ok {
			if v, ok = strings.CutSuffix(v, `"`); ok && validID(v) {
				version = v
			}
		}
	}
	return id, version
}

// validID tells whether s is a FHIR id: [A-Za-z0-9\-\.]{1,64}.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// FindByKey searches the endpoint for the copy of linkbridge's Type/id by
// its write-back key and returns its id and meta.versionId and how many
// matched (0: none; more than one: the endpoint holds duplicates).
func (c *Client) FindByKey(ctx context.Context, typ, id string) (endpointID, version string, n int, err error) {
	found, err := c.findByKey(ctx, typ, id)
	if err != nil || len(found) != 1 {
		return "", "", len(found), err
	}
	return found[0].id, found[0].version, 1, nil
}

// FindAllByKey returns the ids of every resource on the endpoint that
// carries the write-back key of linkbridge's Type/id.
func (c *Client) FindAllByKey(ctx context.Context, typ, id string) ([]string, error) {
	found, err := c.findByKey(ctx, typ, id)
	ids := make([]string, len(found))
	for i, f := range found {
		ids[i] = f.id
	}
	return ids, err
}

type keyed struct{ id, version string }

// findByKey searches [base]/Type?identifier=<key> (or _tag) with Prefer:
// handling=strict, and keeps only the matches that do carry the key: a
// server that ignores a search parameter it does not support (R4 allows
// lenient handling, and some servers default to it) answers with every
// resource of the type, none of which may be taken for linkbridge's copy.
// An answer that is not a searchset Bundle is an error.
func (c *Client) findByKey(ctx context.Context, typ, id string) ([]keyed, error) {
	u := c.cfg.BaseURL + "/" + typ + "?" + fhirmap.WritebackKeyParam(typ) + "=" + url.QueryEscape(c.cfg.Systems.WritebackToken(typ, id))
	resp, err := c.do(ctx, http.MethodGet, u, nil, "Prefer", "handling=strict")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // read to the end or dropped: a close error changes nothing
	if resp.StatusCode != http.StatusOK {
		if isRetryableStatus(resp.StatusCode) {
			after, _ := RetryAfter(resp)
			return nil, &RetryableError{Status: resp.StatusCode, After: after, Err: errors.New("search by write-back key failed")}
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, &PermanentError{Status: resp.StatusCode, Err: errors.New("search by write-back key refused: " + outcomeText(b, resp.StatusCode))}
	}
	var b struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
				Identifier   []struct {
					System string `json:"system"`
					Value  string `json:"value"`
				} `json:"identifier"`
				Meta struct {
					VersionID string `json:"versionId"`
					Tag       []struct {
						System string `json:"system"`
						Code   string `json:"code"`
					} `json:"tag"`
				} `json:"meta"`
			} `json:"resource"`
			Search struct {
				Mode string `json:"mode"`
			} `json:"search"`
		} `json:"entry"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&b); err != nil || b.ResourceType != "Bundle" || b.Type != "searchset" {
		return nil, &RetryableError{Status: resp.StatusCode, Err: errors.New("search by write-back key: the answer is not a searchset Bundle")}
	}
	key, sys := typ+"/"+id, c.cfg.Systems.Writeback()
	var out []keyed
	for _, e := range b.Entry {
		r := e.Resource
		if r.ResourceType != typ || e.Search.Mode == "include" || e.Search.Mode == "outcome" || !validID(r.ID) {
			continue
		}
		carries := false
		for _, i := range r.Identifier {
			carries = carries || i.System == sys && i.Value == key
		}
		for _, t := range r.Meta.Tag {
			carries = carries || t.System == sys && t.Code == key
		}
		if carries {
			out = append(out, keyed{r.ID, r.Meta.VersionID})
		}
	}
	return out, nil
}

// Delete deletes the endpoint's resource Type/endpointID (FHIR R4
// http.html#delete). Deleting what the endpoint no longer holds (404,
// 410) is success: the resource is gone either way.
func (c *Client) Delete(ctx context.Context, typ, endpointID string) (int, error) {
	resp, err := c.do(ctx, http.MethodDelete, c.cfg.BaseURL+"/"+typ+"/"+url.PathEscape(endpointID), nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }() // read to the end or dropped: a close error changes nothing
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300, resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusGone:
		return resp.StatusCode, nil
	case isRetryableStatus(resp.StatusCode):
		after, _ := RetryAfter(resp)
		return 0, &RetryableError{Status: resp.StatusCode, After: after, Err: errors.New(http.StatusText(resp.StatusCode))}
	default:
		var oo []byte
		if looksLikeOutcome(respBody) {
			oo = respBody
		}
		return 0, &PermanentError{Status: resp.StatusCode, Outcome: oo, Err: errors.New(outcomeText(respBody, resp.StatusCode))}
	}
}

// SupportsDelete tells whether the endpoint's CapabilityStatement lists the
// delete interaction for typ (false without a statement).
func (c *Client) SupportsDelete(ctx context.Context, typ string) (bool, error) {
	caps, err := c.capabilities(ctx)
	if err != nil {
		return false, err
	}
	return caps.resources[typ].delete, nil
}

// Endpoint is the endpoint's FHIR base URL, the key of its
// linkbridge.EndpointIdentity records.
func (c *Client) Endpoint() string { return c.cfg.BaseURL }

// PutURL is where a write in ModeClientID or ModeConditional goes:
// [base]/Type/id for client ids; for a conditional update
// [base]/Type?identifier=... when the type has an identifier element, else
// [base]/Type?_tag=... (the key is a meta.tag), both on the token
// <Config.Systems.Writeback>|Type/id.
func (c *Client) PutURL(mode Mode, typ, id string) string {
	if mode == ModeConditional {
		return c.cfg.BaseURL + "/" + typ + "?" + fhirmap.WritebackKeyParam(typ) + "=" + url.QueryEscape(c.cfg.Systems.WritebackToken(typ, id))
	}
	return c.cfg.BaseURL + "/" + typ + "/" + url.PathEscape(id)
}

// FindPatient returns the id of the GP's own Patient with an NHS number,
// or "" when the endpoint holds none (or several).
func (c *Client) FindPatient(ctx context.Context, nhsNumber string) (string, error) {
	u := c.cfg.BaseURL + "/Patient?identifier=" + url.QueryEscape(linkbridge.NHSNumberSystem+"|"+nhsNumber)
	resp, err := c.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }() // read to the end or dropped: a close error changes nothing
	if resp.StatusCode != http.StatusOK {
		if isRetryableStatus(resp.StatusCode) {
			after, _ := RetryAfter(resp)
			return "", &RetryableError{Status: resp.StatusCode, After: after, Err: errors.New("patient lookup failed")}
		}
		return "", nil // the endpoint cannot search patients: identifier references only
	}
	var b struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&b); err != nil {
		return "", nil
	}
	var ids []string
	for _, e := range b.Entry {
		if e.Resource.ResourceType == "Patient" && e.Resource.ID != "" {
			ids = append(ids, e.Resource.ID)
		}
	}
	if len(ids) != 1 {
		return "", nil
	}
	return ids[0], nil
}

// do sends one request through the retrying client. Network failures that
// outlast the in-process retries are RetryableError. A 401 with a
// TokenRefresher invalidates the refused token and sends the request once
// more with a new one.
func (c *Client) do(ctx context.Context, method, u string, body []byte, header ...string) (*http.Response, error) {
	resp, err := c.send(ctx, method, u, body, header...)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	ref, ok := c.cfg.Auth.(TokenRefresher)
	if !ok {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	_ = resp.Body.Close()
	ref.Invalidate(resp.Request)
	c.cfg.Logger.InfoContext(ctx, "GP endpoint refused the access token: retrying with a new one",
		slog.String("method", method), slog.String("url", redactURL(u)))
	return c.send(ctx, method, u, body, header...)
}

type noRetryKey struct{}

// notRetriedInProcess reports whether the request of ctx is one that is
// not retried in process (a POST, a conditional PUT).
func notRetriedInProcess(ctx context.Context) bool {
	v, _ := ctx.Value(noRetryKey{}).(bool)
	return v
}

// send builds, authorizes and sends one request.
func (c *Client) send(ctx context.Context, method, u string, body []byte, header ...string) (*http.Response, error) {
	var rb any
	if body != nil {
		rb = body
	}
	if method == http.MethodPost || method == http.MethodPut && strings.Contains(u, "?") {
		ctx = context.WithValue(ctx, noRetryKey{}, true)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u, rb)
	if err != nil {
		return nil, fmt.Errorf("gpfhir: request: %w", err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if c.cfg.Auth != nil {
		if err := c.cfg.Auth.Authorize(ctx, req.Request); err != nil {
			return nil, &RetryableError{Err: fmt.Errorf("authorize: %w", err)}
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &RetryableError{Err: err}
	}
	return resp, nil
}

func isRetryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// RetryAfter reads a Retry-After header in seconds or HTTP-date form.
func RetryAfter(resp *http.Response) (time.Duration, bool) {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

func looksLikeOutcome(b []byte) bool {
	return bytes.Contains(b, []byte(`"OperationOutcome"`))
}

// outcomeText summarises an OperationOutcome's diagnostics for logs and the
// outbox row (the endpoint's own words; never our payload).
func outcomeText(b []byte, status int) string {
	var oo struct {
		Issue []struct {
			Code        string `json:"code"`
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	if json.Unmarshal(b, &oo) == nil && len(oo.Issue) > 0 {
		parts := make([]string, 0, len(oo.Issue))
		for _, is := range oo.Issue {
			parts = append(parts, strings.TrimSpace(is.Code+" "+is.Diagnostics))
		}
		s := strings.Join(parts, "; ")
		if len(s) > 500 {
			s = s[:500]
		}
		return s
	}
	return http.StatusText(status)
}

// capabilities is what linkbridge reads from the endpoint's
// CapabilityStatement.
type capabilities struct {
	resources map[string]resourceCaps
	// restParams are rest.searchParam: parameters of every type.
	restParams map[string]bool
}

// resourceCaps is one rest.resource entry.
type resourceCaps struct {
	updateCreate, conditionalUpdate bool
	// delete is the delete interaction.
	delete bool
	// params are its searchParam names (nil when it lists none).
	params map[string]bool
}

// searchable tells whether a conditional update of typ can use param: the
// statement lists it for the type or for every type, or lists no search
// parameters at all (it is silent; _tag and identifier are standard).
func (caps *capabilities) searchable(typ, param string) bool {
	r := caps.resources[typ]
	if r.params == nil && caps.restParams == nil {
		return true
	}
	return r.params[param] || caps.restParams[param]
}

// ModeFor is the write mode for a resource type: the configured one, or in
// ModeAuto the one the endpoint's CapabilityStatement implies (see
// ModeAuto).
func (c *Client) ModeFor(ctx context.Context, typ string) (Mode, error) {
	if c.cfg.Mode != ModeAuto {
		return c.cfg.Mode, nil
	}
	caps, err := c.capabilities(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.modes[typ]; ok {
		return m, nil
	}
	// Conditional update is per type, and only idempotent when the type can
	// be searched by its write-back key (identifier, or _tag for a type
	// without one). Without that a conditional write could match nothing
	// every time and duplicate, so the create mode (which searches first,
	// then creates with If-None-Exist) is used.
	m := ModeConditional
	if r, ok := caps.resources[typ]; ok {
		param := fhirmap.WritebackKeyParam(typ)
		switch {
		case r.updateCreate:
			m = ModeClientID
		case r.conditionalUpdate && caps.searchable(typ, param):
			m = ModeConditional
		default:
			m = ModeCreate
			c.cfg.Logger.InfoContext(ctx, "GP endpoint offers neither update-as-create nor conditional update by the write-back key; writing by search, create and update",
				slog.String("type", typ), slog.String("param", param))
		}
	}
	c.modes[typ] = m
	return m, nil
}

// capabilities reads the endpoint's CapabilityStatement once.
func (c *Client) capabilities(ctx context.Context) (*capabilities, error) {
	c.mu.Lock()
	caps := c.caps
	c.mu.Unlock()
	if caps != nil {
		return caps, nil
	}
	caps, err := c.readCapabilities(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.caps == nil {
		c.caps = caps
	}
	return c.caps, nil
}

func (c *Client) readCapabilities(ctx context.Context) (*capabilities, error) {
	resp, err := c.do(ctx, http.MethodGet, c.cfg.BaseURL+"/metadata", nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // read to the end or dropped: a close error changes nothing
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return &capabilities{}, nil // no statement: conditional update, no delete
	case resp.StatusCode != http.StatusOK:
		// Refused (401, 403...) or failing: not "no statement", and not
		// remembered, so the next write reads it again.
		return nil, &RetryableError{Status: resp.StatusCode, Err: fmt.Errorf("reading the CapabilityStatement: HTTP %d", resp.StatusCode)}
	}
	type searchParam struct {
		Name string `json:"name"`
	}
	var cs struct {
		ResourceType string `json:"resourceType"`
		Rest         []struct {
			Mode        string        `json:"mode"`
			SearchParam []searchParam `json:"searchParam"`
			Resource    []struct {
				Type        string `json:"type"`
				Interaction []struct {
					Code string `json:"code"`
				} `json:"interaction"`
				UpdateCreate      bool          `json:"updateCreate"`
				ConditionalUpdate bool          `json:"conditionalUpdate"`
				SearchParam       []searchParam `json:"searchParam"`
			} `json:"resource"`
		} `json:"rest"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&cs); err != nil || cs.ResourceType != "CapabilityStatement" {
		return nil, &RetryableError{Status: resp.StatusCode, Err: errors.New("reading the CapabilityStatement: the answer is not one")}
	}
	names := func(ps []searchParam) map[string]bool {
		if len(ps) == 0 {
			return nil
		}
		out := make(map[string]bool, len(ps))
		for _, p := range ps {
			out[p.Name] = true
		}
		return out
	}
	caps := &capabilities{resources: map[string]resourceCaps{}}
	for _, r := range cs.Rest {
		if r.Mode == "client" {
			continue
		}
		if ps := names(r.SearchParam); ps != nil {
			caps.restParams = ps
		}
		for _, res := range r.Resource {
			rc := resourceCaps{updateCreate: res.UpdateCreate, conditionalUpdate: res.ConditionalUpdate, params: names(res.SearchParam)}
			for _, in := range res.Interaction {
				rc.delete = rc.delete || in.Code == "delete"
			}
			caps.resources[res.Type] = rc
		}
	}
	return caps, nil
}
