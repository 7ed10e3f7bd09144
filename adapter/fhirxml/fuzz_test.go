package fhirxml_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	linkbridge "github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirxml"
)

// seedXML returns the shared XML examples (when present) and small
// hand-made documents.
func seedXML(f *testing.F) [][]byte {
	var seeds [][]byte
	if dir := sharedExamplesDirOrEmpty(); dir != "" {
		for _, p := range filesWithSuffix(f, dir, ".xml") {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, b)
		}
	}
	for _, s := range []string{
		``, `<`, `<Patient/>`, `<Patient` + ns + `/>`,
		`<Patient` + ns + `><birthDate id="b" value="1970"><extension url="u"><valueBoolean value="true"/></extension></birthDate></Patient>`,
		`<Patient` + ns + `><name><given value="a"/><given><extension url="u"><valueString value="x"/></extension></given></name></Patient>`,
		`<Observation` + ns + `><valueQuantity><value value="1.50"/></valueQuantity></Observation>`,
		`<Bundle` + ns + `><entry><resource><Patient><active value="true"/></Patient></resource></entry></Bundle>`,
		`<ServiceRequest` + ns + `><contained><Patient><id value="p"/></Patient></contained></ServiceRequest>`,
		`<Patient` + ns + `><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>a &amp; b<br/></p></div></text></Patient>`,
		`<!DOCTYPE x [<!ENTITY e "x">]><Patient` + ns + `/>`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzToJSON checks that ToJSON never panics, fails only with EINVALID,
// and that what it returns is valid JSON that FromJSON turns into XML
// converting back to the same JSON.
func FuzzToJSON(f *testing.F) {
	for _, s := range seedXML(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		j, err := fhirxml.ToJSON(in)
		if err != nil {
			var ae *linkbridge.Error
			if !errors.As(err, &ae) || ae.Code != linkbridge.EINVALID {
				t.Fatalf("ToJSON error %v is not EINVALID", err)
			}
			return
		}
		if !json.Valid(j) {
			t.Fatalf("ToJSON returned invalid JSON: %s", j)
		}
		x, err := fhirxml.FromJSON(j)
		if err != nil {
			t.Fatalf("FromJSON(ToJSON) = %v\nJSON: %s", err, j)
		}
		j2, err := fhirxml.ToJSON(x)
		if err != nil {
			t.Fatalf("ToJSON(FromJSON(ToJSON)) = %v\nXML: %s", err, x)
		}
		if !bytes.Equal(j, j2) {
			t.Fatalf("not stable:\nfirst  %s\nsecond %s", j, j2)
		}
	})
}

// FuzzFromJSON checks that FromJSON never panics, fails only with
// EINVALID, and that what it returns is well-formed XML that ToJSON reads.
func FuzzFromJSON(f *testing.F) {
	for _, s := range seedXML(f) {
		if j, err := fhirxml.ToJSON(s); err == nil {
			f.Add(j)
		}
	}
	for _, p := range filesWithSuffix(f, filepath.Join(repoTestdata, "fhir"), ".json") {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := fhirxml.FromJSON(in)
		if err != nil {
			var ae *linkbridge.Error
			if !errors.As(err, &ae) || ae.Code != linkbridge.EINVALID {
				t.Fatalf("FromJSON error %v is not EINVALID", err)
			}
			return
		}
		d := xml.NewDecoder(bytes.NewReader(x))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("FromJSON returned XML that is not well-formed (%v): %s", err, x)
			}
		}
		if _, err := fhirxml.ToJSON(x); err != nil {
			t.Fatalf("ToJSON(FromJSON) = %v\nXML: %s", err, x)
		}
	})
}
