package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
)

// TestErrorStatusCode checks the error-code table: the HTTP status and the
// BaRS HTTP error code of each application error code.
func TestErrorStatusCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code       string
		wantStatus int
		wantHTTP   string
	}{
		{linkbridge.EINVALID, http.StatusBadRequest, "REC_BAD_REQUEST"},
		{linkbridge.EUNPROCESSABLE, http.StatusUnprocessableEntity, "REC_UNPROCESSABLE_ENTITY"},
		{linkbridge.ENOTFOUND, http.StatusNotFound, "REC_NOT_FOUND"},
		{linkbridge.ECONFLICT, http.StatusConflict, "REC_CONFLICT"},
		{linkbridge.EDUPLICATE, http.StatusConflict, "REC_CONFLICT"},
		{linkbridge.EPRECONDITION, http.StatusPreconditionFailed, "REC_PRECONDITION_FAILED"},
		{linkbridge.ETOOLARGE, http.StatusRequestEntityTooLarge, "REC_PAYLOAD_TOO_LARGE"},
		{linkbridge.EUNSUPPORTED, http.StatusUnsupportedMediaType, "REC_UNSUPPORTED_MEDIA_TYPE"},
		{linkbridge.ENOTACCEPTABLE, http.StatusNotAcceptable, "REC_NOT_ACCEPTABLE"},
		{linkbridge.EMETHOD, http.StatusMethodNotAllowed, "REC_METHOD_NOT_ALLOWED"},
		{linkbridge.ENOTACCEPTABLE, http.StatusNotAcceptable, "REC_NOT_ACCEPTABLE"},
		{linkbridge.EUNAUTHORIZED, http.StatusUnauthorized, "REC_UNAUTHORIZED"},
		{linkbridge.EFORBIDDEN, http.StatusForbidden, "REC_FORBIDDEN"},
		{linkbridge.ETOOMANY, http.StatusTooManyRequests, "REC_TOO_MANY_REQUESTS"},
		{linkbridge.EINTERNAL, http.StatusInternalServerError, "REC_SERVER_ERROR"},
		{"", http.StatusInternalServerError, "REC_SERVER_ERROR"},
		{"no_such_code", http.StatusInternalServerError, "REC_SERVER_ERROR"},
	}
	for _, tt := range tests {
		if got := httpapi.ErrorStatusCode(tt.code); got != tt.wantStatus {
			t.Errorf("ErrorStatusCode(%q) = %d, want %d", tt.code, got, tt.wantStatus)
		}
		if got := httpapi.BaRSErrorCode(tt.code); got != tt.wantHTTP {
			t.Errorf("BaRSErrorCode(%q) = %q, want %q", tt.code, got, tt.wantHTTP)
		}
	}
}
