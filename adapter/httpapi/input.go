package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/linkbridge/linkbridge"
)

// Bounds on what a request's URL and headers may carry. Everything a
// client chooses — a path id, a search value, a header — is refused with
// 400 and an OperationOutcome (or the /sp/v1 JSON error) before it reaches
// a store, a log line or the audit trail when it is not text the API can
// keep: a NUL or other control character, or bytes that are not UTF-8
// (PostgreSQL text refuses both).
const (
	// MaxRequestIDLength bounds X-Request-Id and X-Correlation-Id (BaRS
	// sends UUIDs, 36 characters).
	MaxRequestIDLength = 200
	// MaxSearchValues bounds the values of one query string, counted
	// across its parameters and their comma-separated lists.
	MaxSearchValues = 100
)

// checkInput refuses a request whose path, query string or headers carry
// bytes the API cannot keep (see the bounds above).
func (s *Server) checkInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkRequestText(r); err != nil {
			s.writeErrorFor(w, r, routeOf(r), err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkRequestText applies the checks of checkInput.
func checkRequestText(r *http.Request) error {
	if !cleanText(r.URL.Path) {
		return linkbridge.Errorf(linkbridge.EINVALID, "the request path holds control characters or bytes that are not UTF-8")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return linkbridge.Errorf(linkbridge.EINVALID, "malformed query string")
	}
	n := 0
	for k, vs := range q {
		if !cleanText(k) {
			return linkbridge.Errorf(linkbridge.EINVALID, "a query parameter name holds control characters or bytes that are not UTF-8")
		}
		for _, v := range vs {
			if !cleanText(v) {
				return linkbridge.Errorf(linkbridge.EINVALID, "the value of query parameter %q holds control characters or bytes that are not UTF-8", k).At(k)
			}
			n += strings.Count(v, ",") + 1
		}
		if n > MaxSearchValues {
			return linkbridge.Errorf(linkbridge.EINVALID, "a query string carries at most %d values", MaxSearchValues).At(k)
		}
	}
	for _, h := range []string{"X-Request-Id", "X-Correlation-Id"} {
		if v := r.Header.Get(h); v != "" && !validRequestID(v) {
			return linkbridge.Errorf(linkbridge.EINVALID, "%s must be at most %d letters, digits, '.', '_', ':' or '-' (a UUID)", h, MaxRequestIDLength).At(h)
		}
	}
	for _, h := range []string{"If-Match", "If-None-Exist", "If-None-Match", "Prefer"} {
		if v := r.Header.Get(h); v != "" && !cleanText(v) {
			return linkbridge.Errorf(linkbridge.EINVALID, "%s holds control characters or bytes that are not UTF-8", h).At(h)
		}
	}
	return nil
}

// cleanText reports whether s is UTF-8 without control characters.
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0 {
			return false
		}
	}
	return true
}

// validRequestID reports whether v is a request or correlation id the API
// keeps: at most MaxRequestIDLength characters of [A-Za-z0-9._:-].
func validRequestID(v string) bool {
	if len(v) > MaxRequestIDLength {
		return false
	}
	for _, c := range []byte(v) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// requestID is the request's X-Request-Id when it is one the API keeps,
// else "": only such an id reaches a log line or an audit record.
func requestID(r *http.Request) string {
	if v := RequestIDFromContext(r.Context()); v != "" {
		return v
	}
	if v := r.Header.Get("X-Request-Id"); validRequestID(v) {
		return v
	}
	return ""
}

// requestIDKey is the context key of a request's id.
type requestIDKey struct{}

// RequestIDFromContext returns the id of the request ctx belongs to: the
// caller's X-Request-Id, or the one the server made up when it sent none
// (every response carries it back as X-Request-Id). "" outside a request.
// cmd/linkbridge's logger adds it to every log line of the request.
func RequestIDFromContext(ctx context.Context) string {
	v, _ := ctx.Value(requestIDKey{}).(string)
	return v
}

// checkBodyText refuses a JSON body that is not UTF-8 or holds a NUL
// (\u0000) in a string: neither can be stored as text.
func checkBodyText(b []byte) error {
	if !utf8.Valid(b) {
		return linkbridge.Errorf(linkbridge.EINVALID, "the request body is not UTF-8")
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] == 'u' && i+5 < len(b) && string(b[i+2:i+6]) == "0000" {
			return linkbridge.Errorf(linkbridge.EINVALID, "the request body holds a NUL character (\\u0000)")
		}
		i++ // the escaped character
	}
	return nil
}

// loggableID is a path id as a log line may carry it: ids this server
// assigns hold a UUID and are logged as they are; any other id is the
// caller's choice (it could be an NHS number) and is logged as a short
// hash, enough to match log lines of one id.
func loggableID(id string) string {
	if id == "" || holdsUUID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// holdsUUID reports whether s contains a UUID in its canonical text form.
func holdsUUID(s string) bool {
	for i := 0; i+36 <= len(s); i++ {
		if isUUID(s[i : i+36]) {
			return true
		}
	}
	return false
}

func isUUID(s string) bool {
	for i, c := range []byte(s) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
