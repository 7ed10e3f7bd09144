package fhirjson

import (
	"bytes"
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

// SetReferenceByIdentifier sets "reference": ref on every logical
// Reference in the resource b whose identifier is system|value (for
// example a patient named by NHS number), the JSON form of
// fhirmap.PointPatientAt. A Reference is recognised as an object with an
// "identifier" object member; contained resources are left alone, and so
// is the inside of a matching Reference. It returns the edited resource
// and the number of references set; b itself when there are none (b is
// never modified). The new member is added at the end of its object
// (member order carries no meaning in JSON) or replaces the reference
// already there. It returns an error when b is not a JSON object.
func SetReferenceByIdentifier(b []byte, system, value, ref string) ([]byte, int, error) {
	if !gjson.ValidBytes(b) {
		return nil, 0, errors.New("fhirjson: SetReferenceByIdentifier: resource is not valid JSON")
	}
	doc := gjson.ParseBytes(b)
	if !doc.IsObject() {
		return nil, 0, errors.New("fhirjson: SetReferenceByIdentifier: resource is not a JSON object")
	}
	if plainKey(value) && !bytes.Contains(b, []byte(value)) {
		return b, 0, nil // no string holds the value (a plain one is never escaped): no walk
	}
	var paths []string
	var walk func(v gjson.Result, path string)
	walk = func(v gjson.Result, path string) {
		switch {
		case v.IsObject():
			if id := v.Get("identifier"); id.IsObject() && path != "" &&
				id.Get("system").String() == system && id.Get("value").String() == value &&
				id.Get("system").Type == gjson.String && id.Get("value").Type == gjson.String {
				paths = append(paths, path)
				return
			}
			v.ForEach(func(k, m gjson.Result) bool {
				if path == "" && k.Str == "contained" {
					return true
				}
				if plainKey(k.Str) {
					walk(m, join(path, k.Str))
				}
				return true
			})
		case v.IsArray():
			i := 0
			v.ForEach(func(_, m gjson.Result) bool {
				walk(m, join(path, strconv.Itoa(i)))
				i++
				return true
			})
		}
	}
	walk(doc, "")
	out := b
	for _, p := range paths {
		var err error
		if out, err = sjson.SetBytes(out, p+".reference", ref); err != nil {
			return nil, 0, fmt.Errorf("fhirjson: SetReferenceByIdentifier: %w", err)
		}
	}
	return out, len(paths), nil
}

// plainKey tells whether a member name needs no escaping in a gjson/sjson
// path: FHIR element names are letters, digits and underscores.
func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// HasMetaTag tells whether the resource b carries a meta.tag Coding in
// system. It is false for anything that is not a JSON object.
func HasMetaTag(b []byte, system string) bool {
	found := false
	gjson.GetBytes(b, "meta.tag").ForEach(func(_, c gjson.Result) bool {
		found = c.Get("system").Type == gjson.String && c.Get("system").Str == system
		return !found
	})
	return found
}
