package fhirjson

import (
	"strings"

	"github.com/tidwall/gjson"
)

// PatientName reads the person's name from a stored Patient's JSON, as
// fhirmap.PersonContactOf reads it from the decoded Patient: of the names
// without a period end, the given names then the family name, joined by
// spaces (the text when both are absent); an "official" name wins over an
// earlier one. It is "" for anything else, a Patient without a name
// included.
//
// b must be a resource the codec has already validated, such as one read
// back from the store: PatientName does not validate. It saves a full
// decode (about 0.2 ms a Patient) where a page lists many people's names,
// as the MDT board does (docs/performance.md#the-mdt-board).
func PatientName(b []byte) string {
	if gjson.GetBytes(b, "resourceType").Str != "Patient" {
		return ""
	}
	name := ""
	gjson.GetBytes(b, "name").ForEach(func(_, n gjson.Result) bool {
		if n.Get("period.end").Exists() {
			return true
		}
		var parts []string
		n.Get("given").ForEach(func(_, g gjson.Result) bool {
			parts = append(parts, g.String())
			return true
		})
		if f := n.Get("family").String(); f != "" {
			parts = append(parts, f)
		}
		s := strings.Join(parts, " ")
		if s == "" {
			s = n.Get("text").String()
		}
		if s != "" && (name == "" || n.Get("use").Str == "official") {
			name = s
		}
		return true
	})
	return name
}
