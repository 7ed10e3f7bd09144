package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/linkbridge/linkbridge"
)

// jsonFormats are the _format values that name FHIR JSON (FHIR R4
// http.html#mime-type), the one format the API produces.
var jsonFormats = []string{"json", "application/json", "application/fhir+json", "application/json+fhir"}

// checkFormat refuses, with ENOTACCEPTABLE (406), a request whose _format
// or Accept asks only for a format other than FHIR JSON: XML (_format=xml,
// Accept: application/fhir+xml) until the XML codec is in, or an unknown
// one, rather than answering JSON the caller did not ask for. _format wins
// over Accept (http.html#mime-type); a POSTed search form's _format is
// checked by parseSearch.
func checkFormat(r *http.Request) error {
	if fs, ok := r.URL.Query()["_format"]; ok {
		for _, f := range fs {
			if err := formatError(f); err != nil {
				return err
			}
		}
		return nil
	}
	if a := r.Header.Get("Accept"); a != "" && !acceptsJSON(a) {
		return linkbridge.Errorf(linkbridge.ENOTACCEPTABLE, "Accept %q: this server answers in FHIR JSON only (application/fhir+json)", a).At("Accept")
	}
	return nil
}

// formatError returns ENOTACCEPTABLE at _format unless f names FHIR JSON.
func formatError(f string) error {
	mt, _, _ := strings.Cut(f, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	for _, j := range jsonFormats {
		if mt == j {
			return nil
		}
	}
	return linkbridge.Errorf(linkbridge.ENOTACCEPTABLE, "_format=%s is not supported: this server answers in FHIR JSON only (_format=json)", f).At("_format")
}

// acceptsJSON reports whether an Accept header admits FHIR JSON: a media
// range with a non-zero quality that is */*, application/*, or a JSON type
// (application/json, application/fhir+json and the like).
func acceptsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		q := 1.0
		for _, p := range fields[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q <= 0 {
			continue
		}
		typ, sub, _ := strings.Cut(mt, "/")
		switch {
		case mt == "*/*", mt == "application/*":
			return true
		case typ == "application" && (sub == "json" || strings.HasSuffix(sub, "+json") || strings.HasPrefix(sub, "json+")):
			return true
		}
	}
	return false
}
