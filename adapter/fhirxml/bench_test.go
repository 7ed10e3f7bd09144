package fhirxml_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/fhirxml"
)

// benchBundle is the repository's referral transaction Bundle (Patient,
// ServiceRequest, Task, ...), in JSON and in XML.
func benchBundle(b *testing.B) (js, xml []byte) {
	b.Helper()
	js, err := os.ReadFile(filepath.Join(repoTestdata, "fhir", "r4", "bundle-referral-transaction.json"))
	if err != nil {
		b.Fatal(err)
	}
	xml, err = fhirxml.FromJSON(js)
	if err != nil {
		b.Fatal(err)
	}
	return js, xml
}

func BenchmarkToJSON(b *testing.B) {
	_, x := benchBundle(b)
	b.SetBytes(int64(len(x)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fhirxml.ToJSON(x); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFromJSON(b *testing.B) {
	js, _ := benchBundle(b)
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fhirxml.FromJSON(js); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCodecDecode includes fhirjson's Decode, for scale.
func BenchmarkCodecDecode(b *testing.B) {
	_, x := benchBundle(b)
	_, xc := newCodecs(b)
	b.SetBytes(int64(len(x)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := xc.Decode(x); err != nil {
			b.Fatal(err)
		}
	}
}
