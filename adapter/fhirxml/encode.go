package fhirxml

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
)

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>`

// xmlWriter turns one FHIR JSON resource into XML.
type xmlWriter struct {
	m     *model
	w     bytes.Buffer
	depth int
}

func (m *model) fromJSON(b []byte) ([]byte, error) {
	if len(b) > MaxBytes {
		return nil, tooLarge(len(b))
	}
	b = bytes.TrimPrefix(b, utf8BOM)
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, invalidf("", "invalid JSON")
	}
	if _, err := d.Token(); !isEOF(err) {
		return nil, invalidf("", "data after the top-level JSON value")
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, invalidf("", "body is not a JSON object: expected a FHIR JSON resource")
	}
	x := &xmlWriter{m: m}
	x.w.Grow(len(b) * 2)
	x.w.WriteString(xmlHeader)
	if err := x.resource(o, "", true); err != nil {
		return nil, err
	}
	return x.w.Bytes(), nil
}

func (x *xmlWriter) enter(path string) error {
	x.depth++
	if x.depth > MaxDepth {
		return tooDeep(path)
	}
	return nil
}

// resource writes a JSON resource as <Type>...</Type>. path is the path of
// its container ("" for the root).
func (x *xmlWriter) resource(o map[string]any, path string, root bool) error {
	rt, ok := o["resourceType"].(string)
	if !ok {
		return invalidf(path, `missing required field "resourceType"`)
	}
	ti, ok := x.m.resources[rt]
	if !ok {
		return invalidf(path, "unknown FHIR %s resource type", x.m.version)
	}
	if path == "" {
		path = ti.name
	}
	if err := x.enter(path); err != nil {
		return err
	}
	defer func() { x.depth-- }()
	x.w.WriteByte('<')
	x.w.WriteString(ti.name)
	if root {
		x.w.WriteString(` xmlns="` + fhirNS + `"`)
	}
	x.w.WriteByte('>')
	if err := x.fields(o, ti, path, 1); err != nil {
		return err
	}
	x.w.WriteString("</")
	x.w.WriteString(ti.name)
	x.w.WriteByte('>')
	return nil
}

// fields writes the child elements of o, an object of type ti, in FHIR
// order. used is the number of keys of o already written (as attributes or
// resourceType); any key left over is an unknown element.
func (x *xmlWriter) fields(o map[string]any, ti *typeInfo, path string, used int) error {
	for _, fi := range ti.fields {
		if fi.choices == nil {
			n, err := x.field(o, fi.name, fi.typ, fi.repeated, path)
			if err != nil {
				return err
			}
			used += n
			continue
		}
		var chosen *choiceInfo
		for _, ci := range fi.choices {
			_, v := o[ci.name]
			_, e := o["_"+ci.name]
			if !v && !e {
				continue
			}
			if chosen != nil {
				return invalidf(child(path, ci.name), "choice element %s[x] appears with more than one type", fi.name)
			}
			chosen = ci
		}
		if chosen != nil {
			n, err := x.field(o, chosen.name, chosen.typ, false, path)
			if err != nil {
				return err
			}
			used += n
		}
	}
	if used == len(o) {
		return nil
	}
	return unknownKey(o, ti, path)
}

// unknownKey reports the first (in sorted order) key of o that is not an
// element of ti.
func unknownKey(o map[string]any, ti *typeInfo, path string) error {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "resourceType" && ti.kind == kindResource || k == "id" && ti.idAttr || k == "url" && ti.urlAttr {
			continue
		}
		name := k
		if len(k) > 1 && k[0] == '_' {
			name = k[1:]
		}
		if ref, ok := ti.byName[name]; ok {
			typ := ref.field.typ
			if ref.choice != nil {
				typ = ref.choice.typ
			}
			if name != k && typ.kind != kindPrimitive {
				return invalidf(child(path, k), "unknown element: only primitive elements have a _%s twin", name)
			}
			continue
		}
		return invalidf(child(path, k), "unknown element")
	}
	return invalidf(path, "unknown element")
}

// field writes the element name of type typ from o["name"] (and, for a
// primitive, o["_name"]), and returns how many keys of o it used.
func (x *xmlWriter) field(o map[string]any, name string, typ *typeInfo, repeated bool, path string) (int, error) {
	v, hasV := o[name]
	var e any
	hasE := false
	if typ.kind == kindPrimitive {
		e, hasE = o["_"+name]
	}
	used := 0
	if hasV {
		used++
	}
	if hasE {
		used++
	}
	if !hasV && !hasE {
		return 0, nil
	}
	p := path + "." + name
	if !repeated {
		if _, ok := v.([]any); ok {
			return 0, invalidf(p, "expected a single value, found an array")
		}
		return used, x.item(name, typ, v, e, p)
	}
	var vs, es []any
	if hasV {
		a, ok := v.([]any)
		if !ok {
			return 0, invalidf(p, "expected an array")
		}
		vs = a
	}
	if hasE {
		a, ok := e.([]any)
		if !ok {
			return 0, invalidf(path+"._"+name, "expected an array")
		}
		es = a
	}
	if hasV && hasE && len(vs) != len(es) {
		return 0, invalidf(p, "%s and _%s have different lengths", name, name)
	}
	n := max(len(vs), len(es))
	if n == 0 {
		return 0, invalidf(p, "empty array")
	}
	for i := 0; i < n; i++ {
		var vi, ei any
		if vs != nil {
			vi = vs[i]
		}
		if es != nil {
			ei = es[i]
		}
		if err := x.item(name, typ, vi, ei, p+"["+strconv.Itoa(i)+"]"); err != nil {
			return 0, err
		}
	}
	return used, nil
}

// item writes one occurrence of an element.
func (x *xmlWriter) item(name string, typ *typeInfo, v, e any, path string) error {
	if err := x.enter(path); err != nil {
		return err
	}
	defer func() { x.depth-- }()
	switch typ.kind {
	case kindPrimitive:
		return x.primitive(name, typ, v, e, path)
	case kindXHTML:
		s, ok := v.(string)
		if !ok {
			return invalidf(path, "expected a string holding an XHTML div")
		}
		if name != "div" {
			return invalidf(path, "XHTML is only allowed in Narrative.div")
		}
		var canon bytes.Buffer
		verbatim, err := parseDiv(s, &canon, path, x.depth)
		if err != nil {
			return err
		}
		if verbatim {
			x.w.WriteString(s)
		} else {
			x.w.Write(canon.Bytes())
		}
		return nil
	case kindContainer:
		o, ok := v.(map[string]any)
		if !ok {
			return invalidf(path, "expected a resource (a JSON object with resourceType)")
		}
		x.start(name)
		x.w.WriteByte('>')
		if err := x.resource(o, path, false); err != nil {
			return err
		}
		x.end(name)
		return nil
	case kindComplex:
		o, ok := v.(map[string]any)
		if !ok {
			return invalidf(path, "expected an object")
		}
		return x.complex(name, typ, o, path)
	}
	return invalidf(path, "unsupported element type")
}

func (x *xmlWriter) start(name string) {
	x.w.WriteByte('<')
	x.w.WriteString(name)
}

func (x *xmlWriter) end(name string) {
	x.w.WriteString("</")
	x.w.WriteString(name)
	x.w.WriteByte('>')
}

// attr writes name="s" after checking that s is a non-empty string XML
// can carry.
func (x *xmlWriter) attr(name string, v any, path string) error {
	s, ok := v.(string)
	if !ok {
		return invalidf(path, "expected a string")
	}
	if s == "" {
		return invalidf(path, "empty string (FHIR values may not be empty)")
	}
	if err := checkXMLChars(s, path); err != nil {
		return err
	}
	x.w.WriteByte(' ')
	x.w.WriteString(name)
	x.w.WriteString(`="`)
	escapeAttr(&x.w, s)
	x.w.WriteByte('"')
	return nil
}

// complex writes a datatype or backbone element: id (and Extension's url)
// as attributes, then the children. An element with nothing to write is an
// error, as an empty JSON object is in FHIR.
func (x *xmlWriter) complex(name string, ti *typeInfo, o map[string]any, path string) error {
	if len(o) == 0 {
		return invalidf(path, "empty object")
	}
	x.start(name)
	used := 0
	for _, a := range []struct {
		name string
		ok   bool
	}{{"id", ti.idAttr}, {"url", ti.urlAttr}} {
		if v, present := o[a.name]; a.ok && present {
			if err := x.attr(a.name, v, path+"."+a.name); err != nil {
				return err
			}
			used++
		}
	}
	x.w.WriteByte('>')
	mark := x.w.Len()
	if err := x.fields(o, ti, path, used); err != nil {
		return err
	}
	if x.w.Len() == mark {
		x.w.Truncate(mark - 1)
		x.w.WriteString("/>")
		return nil
	}
	x.end(name)
	return nil
}

// primitive writes a primitive element from its JSON value v and its "_"
// twin e (either may be nil, not both).
func (x *xmlWriter) primitive(name string, ti *typeInfo, v, e any, path string) error {
	if v == nil && e == nil {
		return invalidf(path, "null with no _%s twin", name)
	}
	x.start(name)
	var exts []any
	if e != nil {
		eo, ok := e.(map[string]any)
		if !ok {
			return invalidf(path, "_%s must be an object (id and extension)", name)
		}
		if len(eo) == 0 {
			return invalidf(path, "empty object")
		}
		used := 0
		if id, ok := eo["id"]; ok {
			if err := x.attr("id", id, path+".id"); err != nil {
				return err
			}
			used++
		}
		if ev, ok := eo["extension"]; ok {
			a, ok := ev.([]any)
			if !ok || len(a) == 0 || ti.ext == nil {
				return invalidf(path+".extension", "expected a non-empty array of extensions")
			}
			exts = a
			used++
		}
		if used != len(eo) {
			return invalidf(path, "_%s holds an element other than id and extension", name)
		}
	}
	if v != nil {
		s, err := jsonPrimitive(v, ti, path)
		if err != nil {
			return err
		}
		if err := x.attr("value", s, path); err != nil {
			return err
		}
	}
	if len(exts) == 0 {
		x.w.WriteString("/>")
		return nil
	}
	x.w.WriteByte('>')
	for i, ev := range exts {
		p := path + ".extension[" + strconv.Itoa(i) + "]"
		eo, ok := ev.(map[string]any)
		if !ok {
			return invalidf(p, "expected an object")
		}
		if err := x.enter(p); err != nil {
			return err
		}
		err := x.complex("extension", ti.ext, eo, p)
		x.depth--
		if err != nil {
			return err
		}
	}
	x.end(name)
	return nil
}

// jsonPrimitive returns the lexical form of a JSON primitive value,
// checking its JSON type against the FHIR type.
func jsonPrimitive(v any, ti *typeInfo, path string) (string, error) {
	switch ti.value {
	case valBool:
		if b, ok := v.(bool); ok {
			return strconv.FormatBool(b), nil
		}
		return "", invalidf(path, "expected a boolean")
	case valInteger:
		if n, ok := v.(json.Number); ok && integerRE.MatchString(string(n)) {
			return string(n), nil
		}
		return "", invalidf(path, "expected an integer")
	case valDecimal:
		if n, ok := v.(json.Number); ok && decimalRE.MatchString(string(n)) {
			return string(n), nil
		}
		return "", invalidf(path, "expected a decimal number")
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", invalidf(path, "expected a string")
}
