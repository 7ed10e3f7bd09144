package bench

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
)

// ParseOnlyMaxBodyBytes is the body limit when
// ParseOnlyHandler.MaxBodyBytes is unset; it matches the gateway's default
// (httpapi.DefaultMaxBodyBytes).
const ParseOnlyMaxBodyBytes = 4 << 20

// ParseOnlyContentType is the media type of every successful response of a
// ParseOnlyHandler.
const ParseOnlyContentType = "application/fhir+json; charset=utf-8"

// ParseOnlyHandler is the baseline that "linkbridge bench" compares the
// gateway with: an HTTP endpoint that does only the FHIR work every request
// must pay for — read the body, parse and validate it with google/fhir
// (through the shared fhirjson.Codec), marshal it back — and stores nothing.
//
// It answers POST on any path with the posted FHIR resource, parsed
// and re-marshalled: 200 and the resource on success, 400 for a body that is
// not a valid FHIR R4 resource, 413 for a body over the limit, 415 for a
// Content-Type other than FHIR JSON, 405 for any method but POST. It is safe
// for concurrent use.
type ParseOnlyHandler struct {
	// Codec parses and renders FHIR JSON; build it once and share it.
	Codec *fhirjson.Codec
	// MaxBodyBytes limits request bodies; defaults to ParseOnlyMaxBodyBytes.
	MaxBodyBytes int64
}

// NewParseOnlyHandler returns a ParseOnlyHandler over codec.
func NewParseOnlyHandler(codec *fhirjson.Codec) *ParseOnlyHandler {
	return &ParseOnlyHandler{Codec: codec}
}

// ServeHTTP implements http.Handler.
func (h *ParseOnlyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// The same Content-Type check the gateway makes.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/fhir+json" && mt != "application/json") {
		http.Error(w, "Content-Type must be application/fhir+json or application/json", http.StatusUnsupportedMediaType)
		return
	}
	limit := h.MaxBodyBytes
	if limit <= 0 {
		limit = ParseOnlyMaxBodyBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "could not read request body", http.StatusBadRequest)
		return
	}
	cr, err := h.Codec.Decode(body)
	if err != nil {
		// fhirjson errors never carry element values, so the message is
		// safe to return.
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := h.Codec.Encode(cr)
	if err != nil {
		http.Error(w, "could not render the resource", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ParseOnlyContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}
