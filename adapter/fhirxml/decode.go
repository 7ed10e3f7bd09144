package fhirxml

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"regexp"
	"strconv"
)

// Bounds on input, XML or JSON.
const (
	// MaxBytes is the largest body ToJSON and FromJSON accept (ETOOLARGE
	// above it). The HTTP layer applies its own, smaller, body limit first;
	// this one protects callers that do not.
	MaxBytes = 16 << 20
	// MaxDepth is the deepest element nesting accepted, counting XML
	// elements (a contained resource adds two: "contained" and its type
	// element; a primitive one) and the XHTML inside Narrative.div.
	// fhirjson.MaxNestingDepth bounds the JSON path at 64 segments; XML
	// needs about twice as many levels for the same resource.
	MaxDepth = 128
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

var (
	// integerRE is FHIR integer/positiveInt/unsignedInt without the "+"
	// that positiveInt allows but JSON does not; jsonformat checks ranges.
	integerRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
	// decimalRE is the FHIR decimal lexical form, which is a JSON number.
	decimalRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
)

func newXMLDecoder(r io.Reader) *xml.Decoder {
	d := xml.NewDecoder(r)
	d.Strict = true
	// No CharsetReader: a declared encoding other than UTF-8 is an error.
	// No Entity map: only the five predefined entities and character
	// references are known; DOCTYPE (the only way to declare more, and
	// the door to external entities) is refused where it is met.
	return d
}

// xmlReader turns one FHIR XML document into JSON.
type xmlReader struct {
	m     *model
	src   []byte // the input, for copying a narrative div verbatim
	d     *xml.Decoder
	depth int
}

func (m *model) toJSON(b []byte) ([]byte, error) {
	if len(b) > MaxBytes {
		return nil, tooLarge(len(b))
	}
	b = bytes.TrimPrefix(b, utf8BOM)
	r := &xmlReader{m: m, src: b, d: newXMLDecoder(bytes.NewReader(b))}
	var root *object
	for first := true; ; first = false {
		tok, err := r.d.Token()
		if isEOF(err) {
			if root == nil {
				return nil, invalidf("", "body holds no XML element: expected a FHIR XML resource")
			}
			break
		}
		if err != nil {
			return nil, xmlError("", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil {
				return nil, invalidf("", "XML has more than one root element")
			}
			if root, err = r.resource(t, ""); err != nil {
				return nil, err
			}
		case xml.CharData:
			if !isSpace(t) {
				return nil, invalidf("", "text outside the root element")
			}
		case xml.Comment:
		case xml.ProcInst:
			// encoding/xml checks the declaration's version and encoding.
			if t.Target != "xml" || !first {
				return nil, invalidf("", "processing instructions are not allowed in FHIR XML")
			}
		case xml.Directive:
			return nil, invalidf("", "DOCTYPE and other directives are not allowed in FHIR XML")
		}
	}
	var w bytes.Buffer
	w.Grow(len(b) / 2)
	writeJSON(&w, root)
	return w.Bytes(), nil
}

// enter counts one more level of nesting.
func (r *xmlReader) enter(path string) error {
	r.depth++
	if r.depth > MaxDepth {
		return tooDeep(path)
	}
	return nil
}

// checkAttrs checks that se's attributes are namespace declarations or
// unqualified attributes named in allowed, and returns the values of the
// allowed ones (nil for absent). FHIR attributes may not be empty.
func checkAttrs(se xml.StartElement, path string, allowed ...string) ([]*string, error) {
	vals := make([]*string, len(allowed))
next:
	for i := range se.Attr {
		a := &se.Attr[i]
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		if a.Name.Space == "" {
			for j, name := range allowed {
				if a.Name.Local == name {
					if a.Value == "" {
						return nil, invalidf(path, "%s attribute is empty (FHIR values may not be empty)", name)
					}
					if err := checkXMLChars(a.Value, path); err != nil {
						return nil, err
					}
					vals[j] = &a.Value
					continue next
				}
			}
		}
		if a.Name.Space == "" && elementNameRE.MatchString(a.Name.Local) {
			return nil, invalidf(path, "attribute %q is not allowed here", a.Name.Local)
		}
		return nil, invalidf(path, "attribute not allowed here")
	}
	return vals, nil
}

func checkNS(se xml.StartElement, path string) error {
	if se.Name.Space != fhirNS {
		return invalidf(child(path, se.Name.Local), "element is not in the FHIR namespace %s", fhirNS)
	}
	return nil
}

// resource reads a resource element (the root, or the child of a contained,
// Bundle.entry.resource or Parameters.parameter.resource element). path is
// the container's path ("" at the root, whose path is the type name).
func (r *xmlReader) resource(se xml.StartElement, path string) (*object, error) {
	if err := checkNS(se, path); err != nil {
		return nil, err
	}
	ti, ok := r.m.resources[se.Name.Local]
	if !ok {
		return nil, invalidf(path, "unknown FHIR %s resource type", r.m.version)
	}
	if path == "" {
		path = ti.name
	}
	if _, err := checkAttrs(se, path); err != nil {
		return nil, err
	}
	if err := r.enter(path); err != nil {
		return nil, err
	}
	defer func() { r.depth-- }()
	o := &object{}
	o.add("resourceType", ti.name)
	return o, r.children(ti, o, path)
}

// complex reads an element of a datatype or backbone element.
func (r *xmlReader) complex(se xml.StartElement, ti *typeInfo, path string) (*object, error) {
	names := []string{"id", "url"}
	if !ti.urlAttr {
		names = names[:1]
	}
	attrs, err := checkAttrs(se, path, names...)
	if err != nil {
		return nil, err
	}
	o := &object{}
	if attrs[0] != nil {
		o.add("id", *attrs[0])
	}
	if ti.urlAttr && attrs[1] != nil {
		o.add("url", *attrs[1])
	}
	if err := r.children(ti, o, path); err != nil {
		return nil, err
	}
	if o.empty() {
		return nil, invalidf(path, "element has no content (FHIR elements must have a value, children or an id)")
	}
	return o, nil
}

// slot gathers the occurrences of one field while its parent is read.
type slot struct {
	choice *choiceInfo
	vals   []any     // values; nil for a primitive without a value
	exts   []*object // primitive id/extension objects, nil where none
}

// children reads the child elements of the element just opened, up to its
// end tag, and adds them to o in the order of ti.fields.
func (r *xmlReader) children(ti *typeInfo, o *object, path string) error {
	slots := make(map[*fieldInfo]*slot)
	for {
		off := r.d.InputOffset()
		tok, err := r.d.Token()
		if err != nil {
			return xmlError(path, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			emit(ti, o, slots)
			return nil
		case xml.CharData:
			if !isSpace(t) {
				return invalidf(path, "text content is not allowed in FHIR XML elements (only in narrative div)")
			}
		case xml.Comment:
		case xml.ProcInst:
			return invalidf(path, "processing instructions are not allowed in FHIR XML")
		case xml.Directive:
			return invalidf(path, "DOCTYPE and other directives are not allowed in FHIR XML")
		case xml.StartElement:
			if err := r.element(ti, t, off, slots, path); err != nil {
				return err
			}
		}
	}
}

// element reads one child element of an element of type ti; off is the
// input offset of its start tag.
func (r *xmlReader) element(ti *typeInfo, se xml.StartElement, off int64, slots map[*fieldInfo]*slot, path string) error {
	name := se.Name.Local
	ref, ok := ti.byName[name]
	if !(ok && ref.field.typ != nil && ref.field.typ.kind == kindXHTML && se.Name.Space == xhtmlNS) {
		// Narrative.div is checked by writeXHTML; all else is FHIR.
		if err := checkNS(se, path); err != nil {
			return err
		}
	}
	if !ok {
		if ti.idAttr && name == "id" || ti.urlAttr && name == "url" {
			return invalidf(child(path, name), "%s must be an XML attribute here, not an element", name)
		}
		return invalidf(child(path, name), "unknown element")
	}
	fi := ref.field
	s := slots[fi]
	if s == nil {
		s = &slot{choice: ref.choice}
		slots[fi] = s
	} else {
		if s.choice != ref.choice {
			return invalidf(child(path, name), "choice element %s[x] appears with more than one type", fi.name)
		}
		if !fi.repeated {
			return invalidf(child(path, name), "element occurs more than once but may occur at most once")
		}
	}
	p := path + "." + name
	if fi.repeated {
		p += "[" + strconv.Itoa(len(s.vals)) + "]"
	}
	typ := fi.typ
	if ref.choice != nil {
		typ = ref.choice.typ
	}
	if err := r.enter(p); err != nil {
		return err
	}
	defer func() { r.depth-- }()
	var (
		v   any
		ext *object
		err error
	)
	switch typ.kind {
	case kindPrimitive:
		v, ext, err = r.primitive(se, typ, p)
	case kindXHTML:
		v, err = r.div(se, off, p)
	case kindContainer:
		v, err = r.container(se, p)
	case kindResource:
		// A field typed as a concrete resource (not in R4 or STU3 core).
		err = invalidf(p, "unsupported element type")
	default:
		v, err = r.complex(se, typ, p)
	}
	if err != nil {
		return err
	}
	s.vals = append(s.vals, v)
	s.exts = append(s.exts, ext)
	return nil
}

// emit adds the gathered fields to o in FHIR order: a primitive as "name"
// (value or array of values, null where an item has none) and "_name" (its
// id and extensions, likewise), anything else as "name".
func emit(ti *typeInfo, o *object, slots map[*fieldInfo]*slot) {
	if len(slots) == 0 {
		return
	}
	for _, fi := range ti.fields {
		s := slots[fi]
		if s == nil {
			continue
		}
		name := fi.name
		if s.choice != nil {
			name = s.choice.name
		}
		hasVal, hasExt := false, false
		for i := range s.vals {
			hasVal = hasVal || s.vals[i] != nil
			hasExt = hasExt || s.exts[i] != nil
		}
		if !fi.repeated {
			if hasVal {
				o.add(name, s.vals[0])
			}
			if hasExt {
				o.add("_"+name, s.exts[0])
			}
			continue
		}
		if hasVal {
			o.add(name, s.vals)
		}
		if hasExt {
			exts := make([]any, len(s.exts))
			for i, e := range s.exts {
				if e != nil {
					exts[i] = e
				}
			}
			o.add("_"+name, exts)
		}
	}
}

// div reads Narrative.div, whose start tag begins at input offset off, into
// a JSON string: the div exactly as written when it stands alone (it
// declares the XHTML namespace itself and uses no prefix declared
// outside), else its canonical form.
func (r *xmlReader) div(se xml.StartElement, off int64, path string) (string, error) {
	var canon bytes.Buffer
	if err := writeXHTML(r.d, se, &canon, path, r.depth); err != nil {
		return "", err
	}
	end := r.d.InputOffset()
	if off >= 0 && end <= int64(len(r.src)) && off < end {
		raw := string(r.src[off:end])
		var scratch bytes.Buffer
		if verbatim, err := parseDiv(raw, &scratch, path, r.depth); err == nil && verbatim {
			return raw, nil
		}
	}
	return canon.String(), nil
}

// primitive reads a primitive element: its value attribute becomes the
// JSON value (nil when absent), its id attribute and extension children
// the "_name" object (nil when neither).
func (r *xmlReader) primitive(se xml.StartElement, ti *typeInfo, path string) (any, *object, error) {
	attrs, err := checkAttrs(se, path, "value", "id")
	if err != nil {
		return nil, nil, err
	}
	var v any
	if a := attrs[0]; a != nil {
		if v, err = primitiveValue(*a, ti, path); err != nil {
			return nil, nil, err
		}
	}
	var ext *object
	if attrs[1] != nil {
		ext = &object{}
		ext.add("id", *attrs[1])
	}
	var exts []any
	for {
		tok, err := r.d.Token()
		if err != nil {
			return nil, nil, xmlError(path, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if len(exts) > 0 {
				if ext == nil {
					ext = &object{}
				}
				ext.add("extension", exts)
			}
			if v == nil && ext == nil {
				return nil, nil, invalidf(path, "primitive element has no value attribute and no extension")
			}
			return v, ext, nil
		case xml.CharData:
			if !isSpace(t) {
				return nil, nil, invalidf(path, "text content is not allowed in FHIR XML elements: a primitive's value is its value attribute")
			}
		case xml.Comment:
		case xml.ProcInst:
			return nil, nil, invalidf(path, "processing instructions are not allowed in FHIR XML")
		case xml.Directive:
			return nil, nil, invalidf(path, "DOCTYPE and other directives are not allowed in FHIR XML")
		case xml.StartElement:
			if err := checkNS(t, path); err != nil {
				return nil, nil, err
			}
			if t.Name.Local != "extension" || ti.ext == nil {
				return nil, nil, invalidf(child(path, t.Name.Local), "unknown element: a primitive holds only extension elements")
			}
			p := path + ".extension[" + strconv.Itoa(len(exts)) + "]"
			if err := r.enter(p); err != nil {
				return nil, nil, err
			}
			e, err := r.complex(t, ti.ext, p)
			r.depth--
			if err != nil {
				return nil, nil, err
			}
			exts = append(exts, e)
		}
	}
}

// primitiveValue converts a value attribute to its JSON value.
func primitiveValue(s string, ti *typeInfo, path string) (any, error) {
	if s == "" {
		return nil, invalidf(path, "value attribute is empty (FHIR values may not be empty)")
	}
	switch ti.value {
	case valBool:
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, invalidf(path, "expected a boolean (true or false)")
	case valInteger:
		if !integerRE.MatchString(s) {
			return nil, invalidf(path, "expected an integer")
		}
		return json.Number(s), nil
	case valDecimal:
		if !decimalRE.MatchString(s) {
			return nil, invalidf(path, "expected a decimal")
		}
		return json.Number(s), nil
	}
	return s, nil
}

// container reads an element that holds one resource (contained,
// Bundle.entry.resource, Parameters.parameter.resource).
func (r *xmlReader) container(se xml.StartElement, path string) (*object, error) {
	if _, err := checkAttrs(se, path); err != nil {
		return nil, err
	}
	var res *object
	for {
		tok, err := r.d.Token()
		if err != nil {
			return nil, xmlError(path, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if res == nil {
				return nil, invalidf(path, "element holds no resource")
			}
			return res, nil
		case xml.CharData:
			if !isSpace(t) {
				return nil, invalidf(path, "text content is not allowed in FHIR XML elements")
			}
		case xml.Comment:
		case xml.ProcInst:
			return nil, invalidf(path, "processing instructions are not allowed in FHIR XML")
		case xml.Directive:
			return nil, invalidf(path, "DOCTYPE and other directives are not allowed in FHIR XML")
		case xml.StartElement:
			if res != nil {
				return nil, invalidf(path, "element holds more than one resource")
			}
			if res, err = r.resource(t, path); err != nil {
				return nil, err
			}
		}
	}
}
