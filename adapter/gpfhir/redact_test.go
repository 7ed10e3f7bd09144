package gpfhir

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestRedactingLogger(t *testing.T) {
	var buf bytes.Buffer
	l := redactingLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	u, _ := url.Parse("https://gp.example/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919")
	l.Debug("performing request", "method", "GET", "url", u.String())
	l.Debug("performing request", "url", u)
	l.Warn("giving up", "error", errors.New(`Get "`+u.String()+`": connection refused`))
	l.Info("plain", "path", "/fhir/Task/1")
	out := buf.String()
	if strings.Contains(out, "9434765919") || strings.Count(out, "?REDACTED") != 3 {
		t.Fatalf("logs:\n%s", out)
	}
	if !strings.Contains(out, "connection refused") || !strings.Contains(out, "/fhir/Task/1") || !strings.Contains(out, "https://gp.example/fhir/Patient?REDACTED") {
		t.Fatalf("redaction removed too much:\n%s", out)
	}
}
