package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
)

// httpError is how the API answers one application error code: the HTTP
// status, and the BaRS HTTP error code that /fhir puts in the
// OperationOutcome's issue.details (code system fhirjson.HTTPErrorCodeSystem).
type httpError struct {
	status int
	code   string
}

// httpErrors is the error-code table of the API (docs/referral-exchange.md,
// "Errors"). The BaRS receiver codes marked "not in BaRS" have no published
// BaRS code; they follow the BaRS naming (REC_ and the HTTP reason phrase in
// upper snake case). Any other code is answered as EINTERNAL.
var httpErrors = map[string]httpError{
	linkbridge.EINVALID:       {http.StatusBadRequest, "REC_BAD_REQUEST"},
	linkbridge.EUNAUTHORIZED:  {http.StatusUnauthorized, "REC_UNAUTHORIZED"},
	linkbridge.EFORBIDDEN:     {http.StatusForbidden, "REC_FORBIDDEN"},
	linkbridge.ENOTFOUND:      {http.StatusNotFound, "REC_NOT_FOUND"},
	linkbridge.EMETHOD:        {http.StatusMethodNotAllowed, "REC_METHOD_NOT_ALLOWED"},
	linkbridge.ECONFLICT:      {http.StatusConflict, "REC_CONFLICT"},
	linkbridge.EDUPLICATE:     {http.StatusConflict, "REC_CONFLICT"},
	linkbridge.EPRECONDITION:  {http.StatusPreconditionFailed, "REC_PRECONDITION_FAILED"},      // not in BaRS
	linkbridge.ETOOLARGE:      {http.StatusRequestEntityTooLarge, "REC_PAYLOAD_TOO_LARGE"},     // not in BaRS
	linkbridge.EUNSUPPORTED:   {http.StatusUnsupportedMediaType, "REC_UNSUPPORTED_MEDIA_TYPE"}, // not in BaRS
	linkbridge.ENOTACCEPTABLE: {http.StatusNotAcceptable, "REC_NOT_ACCEPTABLE"},                // not in BaRS
	linkbridge.EUNPROCESSABLE: {http.StatusUnprocessableEntity, "REC_UNPROCESSABLE_ENTITY"},
	linkbridge.ETOOMANY:       {http.StatusTooManyRequests, "REC_TOO_MANY_REQUESTS"}, // not in BaRS
	linkbridge.ETIMEOUT:       {http.StatusRequestTimeout, "REC_TIMEOUT"},
	linkbridge.EUNAVAILABLE:   {http.StatusServiceUnavailable, "REC_SERVICE_UNAVAILABLE"},
	linkbridge.EINTERNAL:      {http.StatusInternalServerError, "REC_SERVER_ERROR"},
}

func httpErrorFor(code string) httpError {
	if he, ok := httpErrors[code]; ok {
		return he
	}
	return httpErrors[linkbridge.EINTERNAL]
}

// ErrorStatusCode returns the HTTP status the API answers an application
// error code with: EINVALID 400, EUNAUTHORIZED 401, EFORBIDDEN 403,
// ENOTFOUND 404, EMETHOD 405, ENOTACCEPTABLE 406, ECONFLICT and EDUPLICATE
// 409, EPRECONDITION 412, ETOOLARGE 413, EUNSUPPORTED 415, EUNPROCESSABLE
// 422, ETOOMANY 429, ETIMEOUT 408, EUNAVAILABLE 503, anything else 500.
func ErrorStatusCode(code string) int { return httpErrorFor(code).status }

// BaRSErrorCode returns the BaRS HTTP error code (for example
// "REC_BAD_REQUEST") /fhir answers an application error code with; unknown
// codes get "REC_SERVER_ERROR".
func BaRSErrorCode(code string) string { return httpErrorFor(code).code }

// handlerFunc is the shape of every handler that can fail: it either writes
// its one response and returns nil, or returns an error having written
// nothing (it may have set headers, such as Retry-After), and the route's
// adapter answers the error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// fhir adapts h to a /fhir route: an error h returns is answered as an
// OperationOutcome (writeError).
func (s *Server) fhir(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// sp adapts h to a /sp/v1 route: an error h returns is answered as the JSON
// error of /sp/v1 (writeSPError).
func (s *Server) sp(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeSPError(w, r, err)
		}
	}
}

// writeError sends err as an OperationOutcome with the status its code maps
// to. Only internal errors are logged at error level; their details never
// reach the caller.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	err = timedOut(r, err)
	code := linkbridge.ErrorCode(err)
	status := ErrorStatusCode(code)
	if code == linkbridge.EINTERNAL {
		s.Logger.ErrorContext(r.Context(), "internal error", slog.Any("error", err), slog.String("method", r.Method), slog.String("path", r.URL.Path))
	} else {
		s.Logger.DebugContext(r.Context(), "request refused", slog.String("code", code), slog.Int("status", status))
	}
	body, mErr := s.Codec.Encode(fhirjson.OutcomeFromError(err, status, BaRSErrorCode(code)))
	if mErr != nil {
		s.Logger.ErrorContext(r.Context(), "render OperationOutcome", slog.Any("error", mErr))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ContentTypeFHIR)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// spError is the JSON error body of /sp/v1.
type spError struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Fields  []string `json:"fields,omitempty"`
}

// writeSPError sends an application error as JSON with its HTTP status.
func (s *Server) writeSPError(w http.ResponseWriter, r *http.Request, err error) {
	err = timedOut(r, err)
	code := linkbridge.ErrorCode(err)
	if code == linkbridge.EINTERNAL {
		s.Logger.ErrorContext(r.Context(), "internal error", slog.Any("error", err), slog.String("method", r.Method), slog.String("path", r.URL.Path))
	}
	writeJSON(w, ErrorStatusCode(code), spError{Code: code, Message: linkbridge.ErrorMessage(err), Fields: linkbridge.ErrorExpression(err)})
}

// writeErrorFor answers with the error format of the route's API.
func (s *Server) writeErrorFor(w http.ResponseWriter, r *http.Request, route string, err error) {
	if strings.HasPrefix(route, "/sp/v1") || route == unmatchedRoute && strings.HasPrefix(r.URL.Path, "/sp/v1/") {
		s.writeSPError(w, r, err)
		return
	}
	s.writeError(w, r, err)
}

// timedOut turns a failure caused by the request's deadline (see
// RequestTimeout) into ETIMEOUT: the store stopped its query when the
// deadline passed, and the caller is told to retry (BaRS: 408 REC_TIMEOUT),
// not that the server failed.
func timedOut(r *http.Request, err error) error {
	if linkbridge.ErrorCode(err) != linkbridge.EINTERNAL {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		return linkbridge.Errorf(linkbridge.ETIMEOUT, "the request took longer than the server allows; retry later")
	}
	return err
}
