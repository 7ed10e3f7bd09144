package fhirmap_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// TestCodedEntries: the coded entries of a case are read from its FHIR
// view, oldest first, and follow consent (none: no entries) and
// corrections (a withdrawn DNA leaves).
func TestCodedEntries(t *testing.T) {
	var cr linkbridge.CaseRecord
	if err := json.Unmarshal(mustReadFile(t, filepath.Join(caseViewDir, "full-consent.input.json")), &cr); err != nil {
		t.Fatal(err)
	}
	codes := func(cr *linkbridge.CaseRecord) []string {
		var out []string
		entries := fhirmap.Systems{}.CodedEntries(cr)
		for i, e := range entries {
			if i > 0 && e.When.Before(entries[i-1].When) {
				t.Errorf("entry %s/%s (%s) is before the one listed above it", e.Type, e.ID, e.When)
			}
			out = append(out, e.Type+"/"+e.ID+" "+e.Code)
		}
		return out
	}
	got := codes(&cr)
	want := map[string]bool{
		"Procedure/accepted-ref-1 " + linkbridge.SCTReferralToSocialPrescribing: true,
		"Observation/dna-contact-2 " + fhirmap.SCTDidNotAttend:                  true,
		"Observation/m-swemwbs-1 " + fhirmap.SCTSWEMWBS:                         true,
		"Observation/m-wemwbs " + fhirmap.SCTWEMWBS:                             true,
	}
	for _, g := range got {
		delete(want, g)
	}
	if len(want) > 0 || len(got) != 8 {
		t.Errorf("CodedEntries = %q; missing %v (want 8 entries: the referral, one DNA, six measures)", got, want)
	}

	for _, c := range cr.Contacts {
		if c.ID == "contact-2" {
			c.WithdrawnAt = c.At
		}
	}
	if got := codes(&cr); len(got) != 7 {
		t.Errorf("with the DNA withdrawn, CodedEntries = %q, want 7 entries", got)
	}
	cr.Referral.Consent = linkbridge.ConsentNone
	if got := codes(&cr); len(got) != 0 {
		t.Errorf("with consent none, CodedEntries = %q, want none", got)
	}
}
