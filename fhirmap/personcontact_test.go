package fhirmap_test

import (
	"testing"

	"github.com/linkbridge/linkbridge/fhirmap"
)

// TestPersonContactOf: the official name over others, names, numbers and
// addresses that ended left out, the first phone and email, the home
// address; nothing at all is nil.
func TestPersonContactOf(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	tests := []struct {
		name, patient string
		want          *fhirmap.PersonContact
	}{
		{"Full", `{"resourceType":"Patient","name":[{"use":"usual","given":["Al"]},{"use":"official","family":"Smith","given":["Alex","J"]},
			{"use":"old","family":"Jones","period":{"end":"2020-01-01"}}],
			"telecom":[{"system":"phone","value":"01234 000000","period":{"end":"2021-01-01"}},{"system":"phone","value":"07700 900123"},{"system":"email","value":"a@example.org"}],
			"address":[{"use":"work","line":["1 Office Road"]},{"use":"home","line":["2 Home Street"],"city":"Leeds","postalCode":"LS1 1AA"}]}`,
			&fhirmap.PersonContact{Name: "Alex J Smith", Phone: "07700 900123", Email: "a@example.org", Address: "2 Home Street, Leeds, LS1 1AA"}},
		{"TextName", `{"resourceType":"Patient","name":[{"text":"Sam Link"}]}`, &fhirmap.PersonContact{Name: "Sam Link"}},
		{"Nothing", `{"resourceType":"Patient","birthDate":"1950-01-01"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := c.DecodeResource([]byte(tt.patient))
			if err != nil {
				t.Fatal(err)
			}
			got := fhirmap.PersonContactOf(msg)
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Fatalf("PersonContactOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}
