package gpfhir

import (
	"log/slog"
	"net/url"
	"strings"
)

// redactingLogger is the retryablehttp.LeveledLogger of the client: it logs
// through slog, with the query string of every URL value replaced by
// "?REDACTED". retryablehttp logs request URLs (at debug level, and in
// retry and giving-up messages), and a Patient?identifier= lookup carries an
// NHS number in its query string.
type redactingLogger struct{ l *slog.Logger }

func (r redactingLogger) Error(msg string, kv ...any) { r.l.Error(msg, redactKV(kv)...) }
func (r redactingLogger) Info(msg string, kv ...any)  { r.l.Info(msg, redactKV(kv)...) }
func (r redactingLogger) Debug(msg string, kv ...any) { r.l.Debug(msg, redactKV(kv)...) }
func (r redactingLogger) Warn(msg string, kv ...any)  { r.l.Warn(msg, redactKV(kv)...) }

func redactKV(kv []any) []any {
	out := make([]any, len(kv))
	for i, v := range kv {
		switch x := v.(type) {
		case *url.URL:
			out[i] = redactURL(x.String())
		case string:
			out[i] = redactURL(x)
		case error:
			out[i] = redactURL(x.Error())
		default:
			out[i] = v
		}
	}
	return out
}

// redactURL drops the query string of any URL in s.
func redactURL(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "?")
		if i < 0 || !strings.Contains(s[:i], "://") {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString("?REDACTED")
		s = s[i+1:]
		end := strings.IndexAny(s, " \"'")
		if end < 0 {
			return b.String()
		}
		s = s[end:]
	}
}
