// Package mesh is a client of the NHS MESH API (Message Exchange for
// Social care and Health) for the routes GP Connect Send Document uses:
// mailbox handshake, send (chunked over the size limit), inbox list,
// download and acknowledgement; and the outbox Sender that delivers
// send-document messages over it and the Poller that reads the ITK3
// acknowledgements back (docs/send-document.md).
package mesh

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuthScheme prefixes the MESH Authorization header.
const AuthScheme = "NHSMESH "

// TimestampLayout is the MESH authentication timestamp (yyyyMMddHHmm,
// UTC).
const TimestampLayout = "200601021504"

// AuthToken builds the MESH Authorization header value: the mailbox, a
// nonce, a nonce count and a timestamp, with the hex HMAC-SHA256 of
// "mailbox:nonce:count:password:timestamp" keyed by the environment's
// shared key (docs/send-document.md#authentication).
func AuthToken(mailbox, password, sharedKey, nonce string, count int, t time.Time) string {
	ts := t.UTC().Format(TimestampLayout)
	return fmt.Sprintf("%s%s:%s:%d:%s:%s", AuthScheme, mailbox, nonce, count, ts,
		authHMAC(mailbox, password, sharedKey, nonce, strconv.Itoa(count), ts))
}

func authHMAC(mailbox, password, sharedKey, nonce, count, ts string) string {
	h := hmac.New(sha256.New, []byte(sharedKey))
	h.Write([]byte(mailbox + ":" + nonce + ":" + count + ":" + password + ":" + ts))
	return hex.EncodeToString(h.Sum(nil))
}

// Auth is a parsed Authorization header.
type Auth struct {
	Mailbox, Nonce, Count, Timestamp, HMAC string
}

// ParseAuth parses a MESH Authorization header value.
func ParseAuth(v string) (Auth, error) {
	rest, ok := strings.CutPrefix(v, AuthScheme)
	if !ok {
		return Auth{}, fmt.Errorf("mesh: authorization scheme is not NHSMESH")
	}
	p := strings.Split(rest, ":")
	if len(p) != 5 || p[0] == "" || p[1] == "" || p[4] == "" {
		return Auth{}, fmt.Errorf("mesh: authorization has not five parts mailbox:nonce:count:timestamp:hmac")
	}
	if _, err := strconv.Atoi(p[2]); err != nil {
		return Auth{}, fmt.Errorf("mesh: nonce count is not a number")
	}
	return Auth{Mailbox: p[0], Nonce: p[1], Count: p[2], Timestamp: p[3], HMAC: p[4]}, nil
}

// Verify checks the HMAC against the mailbox's password and the shared
// key, and the timestamp against now within skew.
func (a Auth) Verify(password, sharedKey string, now time.Time, skew time.Duration) error {
	t, err := time.Parse(TimestampLayout, a.Timestamp)
	if err != nil {
		return fmt.Errorf("mesh: timestamp is not yyyyMMddHHmm")
	}
	if d := now.Sub(t); d > skew || d < -skew {
		return fmt.Errorf("mesh: timestamp outside the allowed window")
	}
	want := authHMAC(a.Mailbox, password, sharedKey, a.Nonce, a.Count, a.Timestamp)
	if !hmac.Equal([]byte(want), []byte(a.HMAC)) {
		return fmt.Errorf("mesh: authorization HMAC does not match")
	}
	return nil
}
