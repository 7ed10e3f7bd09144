package fhirjson_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// patientNameCases are Patients whose names test each rule of
// PersonContactOf's reading.
var patientNameCases = []struct{ name, json, want string }{
	{"given and family", patientJSON, "Alex XXTESTPATIENT"},
	{"official wins over an earlier usual name", `{"resourceType":"Patient","name":[{"use":"usual","given":["Al"]},{"use":"official","family":"SMITH","given":["Alex","J"]}]}`, "Alex J SMITH"},
	{"the first name without official", `{"resourceType":"Patient","name":[{"given":["Al"]},{"family":"SMITH"}]}`, "Al"},
	{"an ended name is skipped", `{"resourceType":"Patient","name":[{"use":"official","family":"OLD","period":{"end":"2020-01-01"}},{"family":"NEW"}]}`, "NEW"},
	{"text when no parts", `{"resourceType":"Patient","name":[{"text":"Alex Smith"}]}`, "Alex Smith"},
	{"a given with only an extension", `{"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"extension":[{"url":"http://x","valueBoolean":true}]}],"family":"B"}]}`, "A  B"},
	{"no name", `{"resourceType":"Patient","gender":"female"}`, ""},
	{"not a Patient", `{"resourceType":"Practitioner","name":[{"family":"SMITH"}]}`, ""},
}

// TestPatientName: PatientName reads what fhirmap.PersonContactOf reads
// from the decoded Patient, on the cases above and every Patient of the
// test corpus and the shared examples (read in place).
func TestPatientName(t *testing.T) {
	c := mustNew(t)
	check := func(label string, b []byte) {
		t.Helper()
		msg, err := c.DecodeResource(b)
		if err != nil {
			return // PatientName reads only what the codec accepted
		}
		want := ""
		if pc := fhirmap.PersonContactOf(msg); pc != nil {
			want = pc.Name
		}
		if got := fhirjson.PatientName(b); got != want {
			t.Errorf("%s: PatientName = %q, PersonContactOf = %q", label, got, want)
		}
	}
	for _, tc := range patientNameCases {
		if got := fhirjson.PatientName([]byte(tc.json)); got != tc.want {
			t.Errorf("%s: PatientName = %q, want %q", tc.name, got, tc.want)
		}
		check(tc.name, []byte(tc.json))
	}
	n := 0
	for _, dir := range []string{corpusDir, filepath.Join("..", "..", "..", "shared", "fhir-examples")} {
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range append([][]byte{b}, fhirjson.EntryResources(b)...) {
				if fhirjson.PatientName(res) != "" {
					n++
				}
				check(path, res)
			}
			return nil
		})
	}
	if n < 3 {
		t.Errorf("only %d named Patients found in the corpus and examples", n)
	}
}

// FuzzPatientName: whatever the codec accepts as a Patient, PatientName
// reads the name PersonContactOf reads; it never panics on anything.
func FuzzPatientName(f *testing.F) {
	for _, tc := range patientNameCases {
		f.Add([]byte(tc.json))
	}
	c := mustNew(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		got := fhirjson.PatientName(b)
		msg, err := c.DecodeResource(b)
		if err != nil {
			return
		}
		want := ""
		if pc := fhirmap.PersonContactOf(msg); pc != nil {
			want = pc.Name
		}
		if got != want {
			t.Errorf("PatientName = %q, PersonContactOf = %q", got, want)
		}
	})
}
