package fhirjson

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
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

// LiteralRef is a relative literal reference found in a resource's JSON:
// "reference": "Type/id" or "Type/id/_history/version".
type LiteralRef struct {
	// Path is the gjson/sjson path of the Reference object.
	Path string
	// Type, ID and Version are the parts of the reference (Version "" for
	// an unversioned one).
	Type, ID, Version string
}

// Key is "Type/id".
func (r LiteralRef) Key() string { return r.Type + "/" + r.ID }

// LiteralReferences returns every relative literal reference in the
// resource b (FHIR R4 references.html#literal: Type/id, optionally
// /_history/version), outside contained resources. Local ("#x"), absolute
// (http..., urn:...) and logical (identifier-only) references are not
// literal references to resolve on the same server and are left out. It
// returns an error when b is not a JSON object.
func LiteralReferences(b []byte) ([]LiteralRef, error) {
	if !gjson.ValidBytes(b) {
		return nil, errors.New("fhirjson: LiteralReferences: resource is not valid JSON")
	}
	doc := gjson.ParseBytes(b)
	if !doc.IsObject() {
		return nil, errors.New("fhirjson: LiteralReferences: resource is not a JSON object")
	}
	var out []LiteralRef
	var walk func(v gjson.Result, path string)
	walk = func(v gjson.Result, path string) {
		switch {
		case v.IsObject():
			if ref := v.Get("reference"); path != "" && ref.Type == gjson.String {
				if lr, ok := parseRelative(ref.Str); ok {
					lr.Path = path
					out = append(out, lr)
				}
			}
			v.ForEach(func(k, m gjson.Result) bool {
				if path == "" && k.Str == "contained" {
					return true
				}
				if plainKey(k.Str) && (m.IsObject() || m.IsArray()) {
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
	return out, nil
}

// parseRelative splits "Type/id[/_history/v]" (FHIR R4's relative
// reference: a resource type name, an id of [A-Za-z0-9\-\.]{1,64}).
func parseRelative(s string) (LiteralRef, bool) {
	parts := strings.Split(s, "/")
	if len(parts) != 2 && (len(parts) != 4 || parts[2] != "_history") {
		return LiteralRef{}, false
	}
	if !typeName(parts[0]) || !fhirID(parts[1]) || (len(parts) == 4 && !fhirID(parts[3])) {
		return LiteralRef{}, false
	}
	lr := LiteralRef{Type: parts[0], ID: parts[1]}
	if len(parts) == 4 {
		lr.Version = parts[3]
	}
	return lr, true
}

func typeName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func fhirID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// KeepID asks ForEndpoint to leave the id as it is.
const KeepID = "\x00keep"

// ForEndpoint returns b, a resource rendered by Encode, as it is sent to an
// endpoint: its id set to id, removed when id is "" (a create or a
// conditional update lets the endpoint assign it), or kept (KeepID); and the reference of each
// Reference object at a path of refs set to that path's value (a
// reference rewritten to the endpoint's own id). Every other byte stays as
// it was. b is not modified.
func ForEndpoint(b []byte, id string, refs map[string]string) ([]byte, error) {
	if !gjson.ValidBytes(b) || !gjson.ParseBytes(b).IsObject() {
		return nil, errors.New("fhirjson: ForEndpoint: resource is not a JSON object")
	}
	out := b
	var err error
	switch {
	case id == KeepID:
	case id == "":
		if gjson.GetBytes(out, "id").Exists() {
			out, err = sjson.DeleteBytes(out, "id")
		}
	default:
		out, err = sjson.SetBytes(out, "id", id)
	}
	if err != nil {
		return nil, fmt.Errorf("fhirjson: ForEndpoint: %w", err)
	}
	paths := make([]string, 0, len(refs))
	for p := range refs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if out, err = sjson.SetBytes(out, p+".reference", refs[p]); err != nil {
			return nil, fmt.Errorf("fhirjson: ForEndpoint: %w", err)
		}
	}
	return out, nil
}

// DropLiteralReference returns b with the literal reference of the
// Reference object at path removed, keeping its identifier and display
// (a logical reference, FHIR R4 references.html#logical); when it has
// neither, display is set so that the Reference still says something
// (R4's ref-1 wants one of reference, identifier, display). b is not
// modified.
func DropLiteralReference(b []byte, path, display string) ([]byte, error) {
	obj := gjson.GetBytes(b, path)
	if !obj.IsObject() {
		return nil, fmt.Errorf("fhirjson: DropLiteralReference: no Reference at %s", path)
	}
	out, err := sjson.DeleteBytes(b, path+".reference")
	if err != nil {
		return nil, fmt.Errorf("fhirjson: DropLiteralReference: %w", err)
	}
	if !obj.Get("identifier").Exists() && !obj.Get("display").Exists() {
		if out, err = sjson.SetBytes(out, path+".display", display); err != nil {
			return nil, fmt.Errorf("fhirjson: DropLiteralReference: %w", err)
		}
	}
	return out, nil
}
