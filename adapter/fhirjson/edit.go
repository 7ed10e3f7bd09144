package fhirjson

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Edits of a resource already rendered by Encode, made on its JSON with
// gjson and sjson: each saves decoding the resource and encoding it again
// (about 0.1 ms a marshal, twice that a validating parse) for a change
// whose place in the JSON is known.

// SetVersionMeta returns b, a resource rendered by Encode with
// meta.versionId and meta.lastUpdated set (fhirmap.SetMeta), with those two
// values replaced by versionID and lastUpdated rendered as Encode renders
// them (lastUpdated in UTC to the microsecond, InstantLayout). Every other
// byte stays as it was, so the result is what Encode returns for the
// resource with that meta. b is not modified. It returns an error when b is
// not JSON or lacks either value.
func SetVersionMeta(b []byte, versionID int, lastUpdated time.Time) ([]byte, error) {
	if !gjson.ValidBytes(b) {
		return nil, errors.New("fhirjson: SetVersionMeta: resource is not valid JSON")
	}
	if v, lu := gjson.GetBytes(b, "meta.versionId"), gjson.GetBytes(b, "meta.lastUpdated"); v.Type != gjson.String || lu.Type != gjson.String {
		return nil, errors.New("fhirjson: SetVersionMeta: resource has no meta.versionId and meta.lastUpdated")
	}
	out, err := sjson.SetBytes(b, "meta.versionId", strconv.Itoa(versionID))
	if err != nil {
		return nil, fmt.Errorf("fhirjson: SetVersionMeta: %w", err)
	}
	out, err = sjson.SetBytes(out, "meta.lastUpdated", lastUpdated.UTC().Format(InstantLayout))
	if err != nil {
		return nil, fmt.Errorf("fhirjson: SetVersionMeta: %w", err)
	}
	return out, nil
}
