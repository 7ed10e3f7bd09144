package httpapi

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/linkbridge/linkbridge"
)

// FHIR formats (FHIR R4 http.html#mime-type): the API works in JSON and
// converts XML at its edge (adapter/fhirxml), so XML requests take exactly
// the JSON path and stored resources are JSON.
const (
	// ContentTypeFHIRXML is the media type of FHIR XML responses.
	ContentTypeFHIRXML = "application/fhir+xml; charset=utf-8"
)

// format is a FHIR wire format.
type format int

const (
	formatJSON format = iota
	formatXML
)

// jsonTypes and xmlTypes are the media types the API reads and writes for
// each format, the FHIR one first.
var (
	jsonTypes = []string{"application/fhir+json", "application/json"}
	xmlTypes  = []string{"application/fhir+xml", "application/xml", "text/xml"}
)

// formatOfContentType is the format of a request body's Content-Type;
// ok is false for a media type the API does not read.
func formatOfContentType(ct string) (f format, ok bool) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return formatJSON, false
	}
	switch {
	case contains(jsonTypes, mt):
		return formatJSON, true
	case contains(xmlTypes, mt):
		return formatXML, true
	}
	return formatJSON, false
}

// negotiateFormat chooses the format of a FHIR response (FHIR R4
// http.html#format): the _format query parameter when present (json, xml
// or one of the JSON or XML media types), else the Accept header with its
// q-values; an absent Accept, */* and application/* choose JSON, as does a
// tie. It returns ENOTACCEPTABLE when _format names another format or Accept
// allows neither JSON nor XML. It reads only the URL and headers, so any
// handler or middleware may call it.
func negotiateFormat(r *http.Request) (format, error) {
	if v, ok := r.URL.Query()["_format"]; ok && len(v) > 0 {
		return formatParam(v[0])
	}
	return formatOfAccept(r.Header.Values("Accept"))
}

// formatParam reads a _format value. A '+' in a media type arrives as a
// space when the client did not escape it (application/fhir xml), so a
// space is read as '+'.
func formatParam(v string) (format, error) {
	v = strings.ReplaceAll(strings.TrimSpace(v), " ", "+")
	switch strings.ToLower(v) {
	case "json":
		return formatJSON, nil
	case "xml":
		return formatXML, nil
	}
	if f, ok := formatOfContentType(v); ok {
		return f, nil
	}
	return formatJSON, linkbridge.Errorf(linkbridge.ENOTACCEPTABLE,
		"_format must be json, xml or a FHIR JSON or XML media type (application/fhir+json, application/fhir+xml)").At("_format")
}

// acceptRange is one media range of an Accept header.
type acceptRange struct {
	typ, sub string  // "*" for a wildcard
	q        float64 // 0 to 1
}

// formatOfAccept chooses a format from Accept header values (RFC 9110
// §12.5.1): each media type the API writes gets the q-value of the most
// specific range that matches it; the format with the highest q-value above
// zero wins, JSON on a tie.
func formatOfAccept(values []string) (format, error) {
	var ranges []acceptRange
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if ar, ok := parseAcceptRange(part); ok {
				ranges = append(ranges, ar)
			}
		}
	}
	if len(ranges) == 0 {
		return formatJSON, nil // absent (or nothing readable): any format
	}
	best := func(types []string) float64 {
		q := 0.0
		for _, t := range types {
			q = max(q, qualityOf(ranges, t))
		}
		return q
	}
	qj, qx := best(jsonTypes), best(xmlTypes)
	switch {
	case qj > 0 && qj >= qx:
		return formatJSON, nil
	case qx > 0:
		return formatXML, nil
	}
	return formatJSON, linkbridge.Errorf(linkbridge.ENOTACCEPTABLE,
		"Accept must allow application/fhir+json or application/fhir+xml").At("Accept")
}

// parseAcceptRange reads one media range ("text/*;q=0.5"); ok is false for
// an empty or malformed one, which is ignored.
func parseAcceptRange(s string) (acceptRange, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return acceptRange{}, false
	}
	mt, params, err := mime.ParseMediaType(s)
	if err != nil {
		return acceptRange{}, false
	}
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" || typ == "*" && sub != "*" {
		return acceptRange{}, false
	}
	ar := acceptRange{typ: typ, sub: sub, q: 1}
	if qs, ok := params["q"]; ok {
		q, err := strconv.ParseFloat(qs, 64)
		if err != nil || q < 0 || q > 1 {
			return acceptRange{}, false
		}
		ar.q = q
	}
	return ar, true
}

// qualityOf is the q-value ranges give the media type mt: that of the most
// specific matching range (type/sub over type/* over */*), 0 when none
// matches.
func qualityOf(ranges []acceptRange, mt string) float64 {
	typ, sub, _ := strings.Cut(mt, "/")
	q, spec := 0.0, -1
	for _, ar := range ranges {
		s := -1
		switch {
		case ar.typ == typ && ar.sub == sub:
			s = 2
		case ar.typ == typ && ar.sub == "*":
			s = 1
		case ar.typ == "*":
			s = 0
		}
		switch {
		case s > spec:
			q, spec = ar.q, s
		case s == spec && s >= 0:
			q = max(q, ar.q)
		}
	}
	return q
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// isFHIRPath reports whether a request path is on the FHIR API.
func isFHIRPath(p string) bool { return p == "/fhir" || strings.HasPrefix(p, "/fhir/") }

// fhirFormat renders every FHIR JSON answer of a /fhir request that asks
// for XML (negotiateFormat) as FHIR XML: handlers, the security layer and
// the error writers all write JSON, and this layer, outermost but for
// logging, converts what they wrote (status and other headers unchanged).
// A request whose format cannot be negotiated is answered in JSON; the 406
// itself comes from requireFormat, behind authentication.
func (s *Server) fhirFormat(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isFHIRPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if f, err := negotiateFormat(r); err != nil || f != formatXML {
			next.ServeHTTP(w, r)
			return
		}
		held := newHeldResponse()
		next.ServeHTTP(held, r)
		s.sendXML(w, r, held)
	})
}

// requireFormat refuses a FHIR request whose response format cannot be
// negotiated: 406 with an OperationOutcome in JSON.
func (s *Server) requireFormat(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := negotiateFormat(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sendXML writes a held answer to w, its body converted to FHIR XML when it
// is FHIR JSON. Other answers (empty, plain text) pass unchanged.
func (s *Server) sendXML(w http.ResponseWriter, r *http.Request, held *heldResponse) {
	mt, _, _ := mime.ParseMediaType(held.header.Get("Content-Type"))
	if mt != "application/fhir+json" || held.body.Len() == 0 {
		held.sendTo(w)
		return
	}
	x, err := s.xml.FromJSON(held.body.Bytes())
	if err != nil {
		// A 500 in JSON (writeError logs it), not a half-converted answer.
		held = newHeldResponse()
		s.writeError(held, r, linkbridge.Errorf(linkbridge.EINTERNAL, "render FHIR XML: %v", err))
		held.sendTo(w)
		return
	}
	held.header.Del("Content-Length")
	held.header.Set("Content-Type", ContentTypeFHIRXML)
	held.body.Reset()
	_, _ = held.body.Write(x)
	held.sendTo(w)
}
