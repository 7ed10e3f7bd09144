package bodyzip

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// taskBody is a Task as the gateway stores one mid-journey (compact FHIR
// JSON, members in jsonformat's order), written for these tests: not in
// the dictionary.
const taskBody = `{"authoredOn":"2027-03-02T08:41:00Z","businessStatus":{"coding":[{"code":"in-progress","system":"https://linkbridge.example.org/fhir/CodeSystem/referral-business-status"}],"text":"in progress"},` +
	`"code":{"coding":[{"code":"fulfill","display":"Fulfill the focal request","system":"http://hl7.org/fhir/CodeSystem/task-code"}]},"focus":{"reference":"ServiceRequest/0b6f1c2e-8d4a-4f0e-9a57-3c1d2e4f5a6b"},` +
	`"for":{"reference":"Patient/7e2d9c41-5b3a-4c8d-b1f0-9e8d7c6b5a49"},"id":"c3a1e5f7-2b4d-4e6f-8a0c-1d3f5b7e9a2c","intent":"order","lastModified":"2027-03-19T14:05:00Z",` +
	`"meta":{"lastUpdated":"2027-03-19T14:05:00.000000Z","versionId":"4"},"output":[{"type":{"text":"Encounter"},"valueReference":{"reference":"Encounter/5d7f9b1c-3e5a-4c7e-9b1d-3f5a7c9e1b3d"}},` +
	`{"type":{"text":"Observation"},"valueReference":{"reference":"Observation/8b0d2f4a-6c8e-4a0c-b2d4-6f8a0c2e4a6c"}}],"owner":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"SPS07"},"type":"Organization"},` +
	`"priority":"routine","requester":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"B86012"},"type":"Organization"},"resourceType":"Task","status":"in-progress"}`

// largeBody is a valid JSON object of about 1 MB, longer than the
// encoder's window.
func largeBody() []byte {
	var b strings.Builder
	b.WriteString(`{"resourceType":"Task","note":[`)
	for i := range 20000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"text":"contact %d: %x"}`, i, i*7919)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  []byte
		plain bool // stored as it is
	}{
		{"empty", []byte{}, true},
		{"nil", nil, true},
		{"empty object", []byte(`{}`), true},
		{"task", []byte(taskBody), false},
		{"leading whitespace", []byte("\n\t " + taskBody), false},
		{"large", largeBody(), false},
		{"not JSON", []byte("plain text, compressed all the same"), false},
		{"binary", []byte{0x00, 0xff, 0x28, 0xb5, 0x2f, 0xfd, 0x01}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored := Encode(tc.body)
			if tc.plain != bytes.Equal(stored, tc.body) {
				t.Fatalf("stored as it is: %v, want %v", !tc.plain, tc.plain)
			}
			if !tc.plain && !bytes.HasPrefix(stored, zstdMagic) {
				t.Fatalf("stored form starts %x, not a zstd frame", stored[:min(len(stored), 8)])
			}
			got, err := Decode(stored)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.body) {
				t.Fatalf("round trip changed the body: %d bytes in, %d out", len(tc.body), len(got))
			}
		})
	}
}

// TestEncodeUsesDictionary checks that a typical body is compressed
// against dictionary 1: without one, zstd gets such bodies to about 2 to 1.
func TestEncodeUsesDictionary(t *testing.T) {
	stored := Encode([]byte(taskBody))
	var h zstd.Header
	if err := h.Decode(stored); err != nil {
		t.Fatal(err)
	}
	if h.DictionaryID != 1 {
		t.Fatalf("frame names dictionary %d, want 1", h.DictionaryID)
	}
	if !h.HasCheckSum {
		t.Fatal("frame has no checksum")
	}
	if len(stored)*3 > len(taskBody) {
		t.Fatalf("a %d-byte Task stored in %d bytes: under 3 to 1", len(taskBody), len(stored))
	}
	t.Logf("Task: %d bytes stored in %d", len(taskBody), len(stored))
}

func TestDecodePlain(t *testing.T) {
	for _, body := range []string{`{}`, `{"resourceType":"Patient"}`, " \r\n\t{\"a\":1}"} {
		got, err := Decode([]byte(body))
		if err != nil || string(got) != body {
			t.Fatalf("Decode(%q) = %q, %v; want it as it is", body, got, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	frame := Encode([]byte(taskBody))
	damaged := bytes.Clone(frame)
	damaged[len(damaged)-6] ^= 0x55 // in the last block or the checksum
	otherDict := mustEncoder(t, zstd.WithEncoderDictRaw(2, []byte(`{"resourceType":"Task","status":"requested"}`))).
		EncodeAll([]byte(taskBody), nil)
	for _, tc := range []struct {
		name, stored, want string
	}{
		{"text", "hello", "neither JSON nor a zstd frame"},
		{"array", `[1,2]`, "neither JSON nor a zstd frame"},
		{"whitespace only", "  \n", "neither JSON nor a zstd frame"},
		{"magic only", string(zstdMagic), "stored body"},
		{"truncated", string(frame[:len(frame)/2]), "stored body"},
		{"damaged", string(damaged), "stored body"},
		{"unknown dictionary", string(otherDict), "dictionary 2, which this build does not know"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.stored))
			if err == nil {
				t.Fatalf("Decode returned %d bytes and no error", len(got))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestDecodeWithoutDictionary checks that a frame naming no dictionary
// decodes: it needs none.
func TestDecodeWithoutDictionary(t *testing.T) {
	stored := mustEncoder(t).EncodeAll([]byte(taskBody), nil)
	got, err := Decode(stored)
	if err != nil || string(got) != taskBody {
		t.Fatalf("Decode = %d bytes, %v; want the Task", len(got), err)
	}
}

// TestConcurrent runs Encode and Decode from several goroutines (run
// with -race).
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				body := fmt.Appendf(nil, `{"resourceType":"Goal","id":"g-%d-%d","lifecycleStatus":"active"}`, g, i)
				got, err := Decode(Encode(body))
				if err != nil || !bytes.Equal(got, body) {
					errs <- fmt.Errorf("goroutine %d body %d: %q, %v", g, i, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func mustEncoder(t *testing.T, opts ...zstd.EOption) *zstd.Encoder {
	t.Helper()
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// FuzzDecode checks that Decode never panics, and that what Encode stores
// decodes to what it was given.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(taskBody))
	f.Add(Encode([]byte(taskBody)))
	f.Add(Encode(largeBody()[:5000]))
	f.Add([]byte{})
	f.Add(zstdMagic)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x23, 0x01, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Decode(b)
		got, err := Decode(Encode(b))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %d bytes: %d bytes, %v", len(b), len(got), err)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	body := []byte(taskBody)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		Encode(body)
	}
}

func BenchmarkDecode(b *testing.B) {
	stored := Encode([]byte(taskBody))
	b.SetBytes(int64(len(taskBody)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(stored); err != nil {
			b.Fatal(err)
		}
	}
}
