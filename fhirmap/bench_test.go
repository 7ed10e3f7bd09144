package fhirmap_test

import (
	"path/filepath"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	"google.golang.org/protobuf/proto"
)

// benchEntries decodes the referral transaction of BenchmarkMapReferral and
// returns its resources (Patient, ServiceRequest, Task, Organization,
// PractitionerRole, HealthcareService...).
func benchEntries(b *testing.B) []proto.Message {
	c := mustCodec(b)
	body := mustReadFile(b, filepath.Join(corpusDir, "valid", "transaction-practitionerrole-healthcareservice.json"))
	entries := mustEntries(b, c, body)
	out := make([]proto.Message, len(entries))
	for i, e := range entries {
		out[i] = e.Resource
	}
	return out
}

// BenchmarkSearchParams indexes every resource of a referral, as intake
// does before storing them.
func BenchmarkSearchParams(b *testing.B) {
	res := benchEntries(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range res {
			fhirmap.SearchParams(r)
		}
	}
}

// BenchmarkRewriteReferences repoints every reference of a referral's
// resources, as intake does when it assigns ids. Every reference is
// rewritten on every round (urn:uuid ones to Patient/p1, typed ones to
// themselves), so each round does the same work.
func BenchmarkRewriteReferences(b *testing.B) {
	res := benchEntries(b)
	resolve := func(typ, id string) (string, string, bool) {
		if typ == "" {
			return "Patient", "p1", true
		}
		return typ, id, typ != "#"
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range res {
			fhirmap.RewriteReferences(r, resolve)
		}
	}
}

// BenchmarkForGPRecord prepares every resource of a referral for the GP
// record (a copy with the patient and referral as logical references).
func BenchmarkForGPRecord(b *testing.B) {
	res := benchEntries(b)
	r := &linkbridge.Referral{ID: "sr1", PersonID: "p1", Identifier: linkbridge.Identifier{System: "https://example.org/referral", Value: "REF-1"}}
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range res {
			fhirmap.Systems{}.ForGPRecord(m, r, "9434765919", nil)
		}
	}
}
