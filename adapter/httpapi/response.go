package httpapi

import (
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
)

// ContentTypeFHIR is the media type of FHIR JSON.
const ContentTypeFHIR = "application/fhir+json; charset=utf-8"

// readBody checks the content type and reads the body within the limit,
// returning FHIR JSON: an XML body (application/fhir+xml, application/xml,
// text/xml) is converted to JSON here (adapter/fhirxml), so from here on it
// takes exactly the JSON path and is stored as JSON. XML that is not FHIR
// XML is EINVALID with the converter's expression; any other Content-Type
// is EUNSUPPORTED (415).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	f, ok := formatOfContentType(r.Header.Get("Content-Type"))
	if !ok {
		return nil, linkbridge.Errorf(linkbridge.EUNSUPPORTED, "Content-Type must be application/fhir+json or application/fhir+xml (or application/json, application/xml, text/xml)")
	}
	b, err := s.readLimited(w, r)
	if err != nil || f == formatJSON {
		return b, err
	}
	if b, err = s.xml.ToJSON(b); err != nil {
		return nil, err
	}
	if err := checkBodyText(b); err != nil {
		return nil, err
	}
	return b, nil
}

// readLimited reads the request body, refusing one over MaxBodyBytes
// (ETOOLARGE).
func (s *Server) readLimited(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := s.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, linkbridge.Errorf(linkbridge.ETOOLARGE, "request body is larger than %d bytes", limit)
		}
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "could not read request body")
	}
	if err := checkBodyText(b); err != nil {
		return nil, err
	}
	return b, nil
}

// readResource reads and decodes a FHIR request body, returning the
// resource and the body as received.
func (s *Server) readResource(w http.ResponseWriter, r *http.Request) (proto.Message, []byte, error) {
	b, err := s.readBody(w, r)
	if err != nil {
		return nil, nil, err
	}
	if n, ok := fhirjson.BundleEntryCount(b); ok && n > s.maxBundleEntries() {
		return nil, nil, tooManyEntries(n, s.maxBundleEntries())
	}
	res, err := s.decode(b)
	return res, b, err
}

// maxBundleEntries is MaxBundleEntries or its default.
func (s *Server) maxBundleEntries() int {
	if s.MaxBundleEntries > 0 {
		return s.MaxBundleEntries
	}
	return linkbridge.DefaultMaxReferralEntries
}

// tooManyEntries refuses a Bundle of n entries over max (ETOOLARGE, 413).
func tooManyEntries(n, max int) error {
	return linkbridge.Errorf(linkbridge.ETOOLARGE, "a referral Bundle carries at most %d entries, not %d", max, n).At("Bundle.entry")
}

// readAs is readResource for an endpoint that takes a T (see expect).
func readAs[T proto.Message](s *Server, w http.ResponseWriter, r *http.Request, endpoint, urlID string) (T, []byte, error) {
	res, b, err := s.readResource(w, r)
	if err != nil {
		var zero T
		return zero, nil, err
	}
	t, err := expect[T](res, endpoint, urlID)
	return t, b, err
}

// attachRaw gives each entry of a Bundle its resource's JSON as received:
// entries[i] is Bundle.entry[i+skip]. Entries keep Raw nil when the Bundle
// does not line up (the gateway then marshals them instead).
func attachRaw(body []byte, entries []*fhirmap.Entry, skip int) {
	raws := fhirjson.EntryResources(body)
	for i, e := range entries {
		if i+skip < len(raws) && raws[i+skip] != nil && !e.Contained {
			e.Raw = raws[i+skip]
		}
	}
}

// expect checks that a decoded resource is the type an endpoint takes (and,
// for an update, that its id is the one in the URL).
func expect[T proto.Message](res proto.Message, endpoint, urlID string) (T, error) {
	t, ok := res.(T)
	if !ok {
		var zero T
		got := fhirmap.TypeName(res)
		return zero, linkbridge.Errorf(linkbridge.EINVALID, "%s takes a %s, not %s", endpoint, fhirmap.TypeName(zero), got).At(got)
	}
	if urlID != "" && fhirmap.ID(t) != urlID {
		typ := fhirmap.TypeName(t)
		return t, linkbridge.Errorf(linkbridge.EINVALID, "%s.id must equal the id in the URL", typ).At(typ + ".id")
	}
	return t, nil
}

// decode parses a FHIR resource body, returning the resource proto.
func (s *Server) decode(b []byte) (proto.Message, error) {
	cr, err := s.parse(b)
	if err != nil {
		return nil, err
	}
	res := fhirmap.Unwrap(cr)
	if res == nil {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "body is not a FHIR resource")
	}
	return res, nil
}

// parse is Codec.Decode, at most MaxDecoders at once: a parse waits for a
// token first. The wait is short (a parse takes about a millisecond) and
// takes no lock the writer needs.
func (s *Server) parse(b []byte) (*rpb.ContainedResource, error) {
	s.decodersOnce.Do(s.initDecoders)
	s.decoders <- struct{}{}
	defer func() { <-s.decoders }()
	return s.Codec.Decode(b)
}

// initDecoders makes the parse tokens: MaxDecoders, or GOMAXPROCS.
func (s *Server) initDecoders() {
	n := s.MaxDecoders
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s.decoders = make(chan struct{}, n)
}

// etag renders a version as a weak ETag.
func etag(version int) string { return `W/"` + strconv.Itoa(version) + `"` }

// parseETag reads W/"n" or "n" from If-Match.
func parseETag(v string) (int, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
	v = strings.Trim(v, `"`)
	n, err := strconv.Atoi(v)
	return n, err == nil && n > 0
}

// setResourceHeaders sets ETag, Last-Modified and (for writes) Location.
func setResourceHeaders(w http.ResponseWriter, res *linkbridge.Resource, location bool) {
	h := w.Header()
	h.Set("ETag", etag(res.VersionID))
	h.Set("Last-Modified", res.LastUpdated.UTC().Format(http.TimeFormat))
	if location {
		h.Set("Location", locationOf(res))
	}
}

func locationOf(res *linkbridge.Resource) string {
	return res.Type + "/" + res.ID + "/_history/" + strconv.Itoa(res.VersionID)
}

// writeResource answers 200 with a stored resource as stored (never
// re-marshalled).
func writeResource(w http.ResponseWriter, res *linkbridge.Resource) {
	setResourceHeaders(w, res, false)
	w.Header().Set("Content-Type", ContentTypeFHIR)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Body)
}

// writeWriteResult answers a create or update, honouring Prefer:
// return=minimal | representation (default) | OperationOutcome.
func (s *Server) writeWriteResult(w http.ResponseWriter, r *http.Request, res *linkbridge.Resource, status int, msg string) error {
	setResourceHeaders(w, res, true)
	body := res.Body
	switch preferReturn(r) {
	case "minimal":
		w.WriteHeader(status)
		return nil
	case "OperationOutcome":
		var err error
		if body, err = s.Codec.Encode(fhirjson.InformationOutcome(msg)); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", ContentTypeFHIR)
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// preferReturn reads the return preference of the Prefer header.
func preferReturn(r *http.Request) string {
	for _, p := range strings.Split(r.Header.Get("Prefer"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.TrimSpace(k) == "return" {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// bundleEntry is one entry of a Bundle the gateway renders: the envelope
// parts as protos, and the resource either as stored bytes (spliced in, not
// re-marshalled) or as a proto to encode.
type bundleEntry struct {
	entry *rpb.Bundle_Entry
	raw   []byte
}

// writeBundle answers 200 with b holding entries (Codec.EncodeBundle).
func (s *Server) writeBundle(w http.ResponseWriter, b *rpb.Bundle, entries []bundleEntry) error {
	b.Entry = make([]*rpb.Bundle_Entry, len(entries))
	raw := make([][]byte, len(entries))
	for i, e := range entries {
		b.Entry[i], raw[i] = e.entry, e.raw
	}
	body, err := s.Codec.EncodeBundle(b, raw)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ContentTypeFHIR)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// responseEntry builds a transaction-response entry for a stored resource.
func responseEntry(res *linkbridge.Resource, status string) *rpb.Bundle_Entry {
	return &rpb.Bundle_Entry{Response: &rpb.Bundle_Entry_Response{
		Status:       &dpb.String{Value: status},
		Location:     &dpb.Uri{Value: locationOf(res)},
		Etag:         &dpb.String{Value: etag(res.VersionID)},
		LastModified: fhirmap.Instant(res.LastUpdated),
	}}
}

func bundleType(t string) *rpb.Bundle_TypeCode {
	bt := &rpb.Bundle_TypeCode{}
	fhirmap.SetCode(bt, t)
	return bt
}
