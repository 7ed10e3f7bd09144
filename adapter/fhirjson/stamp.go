package fhirjson

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// InstantLayout is how the gateway writes meta.lastUpdated: UTC with
// microseconds, as jsonformat renders fhirmap.Instant.
const InstantLayout = "2006-01-02T15:04:05.000000Z"

// Stamp is the storage form of a resource the gateway received as JSON and
// has already parsed and validated with Decode: the received bytes with the
// server's id and meta.versionId/meta.lastUpdated set (other meta elements,
// such as profile and security labels, are kept), and every JSON string
// value equal to a key of refs replaced by its value (urn:uuid fullUrls and
// client ids turned into the server's "Type/id" references, as a FHIR
// transaction requires). Member order and everything else stay as received,
// so the resource is served as the sender wrote it and is never
// re-marshalled through jsonformat (about 0.2 ms a resource).
//
// replaced counts the strings replaced. The caller compares it with the
// number of references it rewrote in the parsed resource and falls back to
// Encode when they differ (a reference spelt with JSON escapes, or a
// matching string outside a reference).
func Stamp(raw []byte, id string, versionID int, lastUpdated time.Time, refs map[string]string) (out []byte, replaced int, err error) {
	out, replaced, _, err = StampIdentified(raw, id, versionID, lastUpdated, refs, nil)
	return out, replaced, err
}

// StampIdentified is Stamp that also gives a reference the business
// identifier of the resource it now points at, as
// fhirmap.IdentifyReferences does to the parsed resource: an object whose
// "reference" is rewritten to a key of idents, and which has no
// "identifier" member, gets "identifier" (the key's value, a JSON
// Identifier) after its "reference" (FHIR R4 references.html#Reference).
// The objects it walks are written without the whitespace between their
// members. identified counts the identifiers added; the caller compares it
// with IdentifyReferences' count, as it does replaced, and falls back to
// Encode when they differ. With no idents it is Stamp.
func StampIdentified(raw []byte, id string, versionID int, lastUpdated time.Time, refs map[string]string, idents map[string][]byte) (out []byte, replaced, identified int, err error) {
	if !gjson.ValidBytes(raw) {
		return nil, 0, 0, errors.New("fhirjson: Stamp: resource is not valid JSON")
	}
	doc := gjson.ParseBytes(raw)
	if !doc.IsObject() {
		return nil, 0, 0, errors.New("fhirjson: Stamp: resource is not a JSON object")
	}
	rt := doc.Get("resourceType")
	if rt.Type != gjson.String {
		return nil, 0, 0, errors.New("fhirjson: Stamp: resource has no resourceType")
	}
	meta := doc.Get("meta")
	if meta.Exists() && !meta.IsObject() {
		return nil, 0, 0, errors.New("fhirjson: Stamp: meta is not a JSON object")
	}
	out = make([]byte, 0, len(raw)+96)
	out = append(out, `{"resourceType":`...)
	out = append(out, rt.Raw...)
	out = append(out, `,"id":`...)
	out = strconv.AppendQuote(out, id)
	out = append(out, `,"meta":{"versionId":"`...)
	out = strconv.AppendInt(out, int64(versionID), 10)
	out = append(out, `","lastUpdated":"`...)
	out = lastUpdated.UTC().AppendFormat(out, InstantLayout)
	out = append(out, '"')
	meta.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "versionId", "lastUpdated", "_versionId", "_lastUpdated":
		default:
			out = append(out, ',')
			out = append(out, k.Raw...)
			out = append(out, ':')
			out = append(out, v.Raw...)
		}
		return true
	})
	out = append(out, '}')
	doc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "resourceType", "id", "meta":
			return true
		}
		out = append(out, ',')
		out = append(out, k.Raw...)
		out = append(out, ':')
		if len(idents) == 0 {
			var n int
			out, n = appendReplacingStrings(out, v.Raw, refs)
			replaced += n
		} else {
			out = appendIdentifying(out, v, refs, idents, &replaced, &identified)
		}
		return true
	})
	out = append(out, '}')
	return out, replaced, identified, nil
}

// appendIdentifying appends the JSON value v to out as appendReplacingStrings
// does, walking its objects and arrays to add an identifier to each
// reference StampIdentified names (an object with a rewritten "reference"
// and no "identifier"). It counts the strings replaced and the identifiers
// added.
func appendIdentifying(out []byte, v gjson.Result, refs map[string]string, idents map[string][]byte, replaced, identified *int) []byte {
	switch {
	case v.IsObject() || v.IsArray():
		obj := v.IsObject()
		var ident []byte
		if r := v.Get("reference"); obj && r.Type == gjson.String && !v.Get("identifier").Exists() {
			if from, ok := unescaped(r.Raw); ok {
				if to, ok := refs[from]; ok {
					ident = idents[to]
				}
			}
		}
		open, end := byte('['), byte(']')
		if obj {
			open, end = '{', '}'
		}
		out = append(out, open)
		first := true
		v.ForEach(func(k, m gjson.Result) bool {
			if !first {
				out = append(out, ',')
			}
			first = false
			if obj {
				out = append(out, k.Raw...)
				out = append(out, ':')
			}
			out = appendIdentifying(out, m, refs, idents, replaced, identified)
			if ident != nil && k.Str == "reference" {
				out = append(out, `,"identifier":`...)
				out = append(out, ident...)
				*identified++
				ident = nil // once, should "reference" repeat
			}
			return true
		})
		return append(out, end)
	case v.Type == gjson.String:
		if from, ok := unescaped(v.Raw); ok {
			if to, ok := refs[from]; ok {
				*replaced++
				return strconv.AppendQuote(out, to)
			}
		}
	}
	return append(out, v.Raw...)
}

// IdentifierJSON renders an Identifier of system and value as FHIR JSON,
// for StampIdentified's idents.
func IdentifierJSON(system, value string) []byte {
	b, err := json.Marshal(struct {
		System string `json:"system,omitempty"`
		Value  string `json:"value,omitempty"`
	}{system, value})
	if err != nil {
		panic(err) // two strings always marshal
	}
	return b
}

// unescaped returns the text of a JSON string token spelt without escapes;
// false for one with escapes, which, as in appendReplacingStrings, matches
// no reference.
func unescaped(raw string) (string, bool) {
	if len(raw) < 2 || strings.IndexByte(raw, '\\') >= 0 {
		return "", false
	}
	return raw[1 : len(raw)-1], true
}

// appendReplacingStrings appends the JSON text val to out with every string
// token whose value is a key of refs replaced by that key's value, and
// counts the replacements. One pass over val, a map lookup per string: the
// cost is linear in the size of the resource whatever the number of
// references rewritten (a Bundle of N entries rewrites N fullUrls in each
// of N resources). A string spelt with escapes is left as it is (the
// caller's reference count then differs and it re-marshals instead).
func appendReplacingStrings(out []byte, val string, refs map[string]string) ([]byte, int) {
	replaced := 0
	start := 0 // val[start:] is not yet copied
	for i := 0; i < len(val); i++ {
		if val[i] != '"' {
			continue
		}
		escaped := false
		j := i + 1
		for ; j < len(val) && val[j] != '"'; j++ {
			if val[j] == '\\' {
				escaped = true
				j++
			}
		}
		if j >= len(val) {
			break // not valid JSON; Stamp checked it is
		}
		if !escaped {
			if to, ok := refs[val[i+1:j]]; ok {
				out = append(out, val[start:i]...)
				out = strconv.AppendQuote(out, to)
				start = j + 1
				replaced++
			}
		}
		i = j
	}
	return append(out, val[start:]...), replaced
}
