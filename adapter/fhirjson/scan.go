package fhirjson

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	linkbridge "github.com/linkbridge/linkbridge"
)

// checkJSONRules enforces FHIR JSON rules that jsonformat v0.7.4 does not:
//
//   - no empty string value: every FHIR primitive needs at least one
//     character. jsonformat reads "status":"" as a status element with no
//     value, which satisfies its required-field check and then disappears on
//     Encode.
//   - null only as an array element where it aligns a primitive array with
//     its _element twin ("given":["Jan",null],"_given":[null,{...}]): an
//     object holding an array with a null must also hold the array's _twin.
//     jsonformat ignores "status":null, and reads a null array element with
//     no twin as an empty primitive that no FHIR reader accepts back.
//   - no empty object or array (FHIR ele-1; arrays are never empty).
//   - no duplicate key in an object. jsonformat keeps the last one; another
//     reader might keep the first, so a duplicate could mean two different
//     referrals to two systems.
//   - no element name starting with an upper-case letter. jsonformat
//     lower-cases the first letter of every key before looking it up (a
//     "TODO: reject upper camel case" in v0.7.4), so a misspelt
//     "PatientInstruction" was silently read as patientInstruction. FHIR
//     JSON names are case-sensitive and always start lower-case (or with
//     "_" then lower-case).
//
// b must be syntactically valid JSON (jsonformat has already parsed it). The
// returned error names the element by its JSON path in FHIRPath style
// ("Patient.name[0].given"), and never quotes a value.
//
// rootType is the type of the decoded resource, used as the root of the path.
func checkJSONRules(b []byte, rootType string) *linkbridge.Error {
	s := scanner{b: b, resourceType: rootType}
	problem := s.run()
	if problem == "" {
		return nil
	}
	e := &linkbridge.Error{Code: linkbridge.EINVALID, Message: problem}
	if s.at != "" {
		e.Expression = []string{s.at}
	} else if p := s.path(); p != "" {
		e.Expression = []string{p}
	}
	return e
}

// resourceTypeRE matches a plausible resource type name (used as the root of
// the reported path).
var resourceTypeRE = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)

type frame struct {
	array bool
	key   []byte              // current key (objects)
	index int                 // current index (arrays)
	keys  [][]byte            // keys seen so far (objects), up to maxKeyList
	many  map[string]struct{} // all keys, once there are more than maxKeyList
	// nulls are the keys of this object's arrays holding a null, each with
	// the path of its first null (the _twin is checked at the close).
	nulls []nullAt
}

type nullAt struct {
	key  []byte
	path string
}

// maxKeyList is how many keys an object's duplicate check compares one by
// one before it switches to a map; FHIR objects rarely have more than 30.
const maxKeyList = 32

// seen records key in f and reports whether it was already there.
func (f *frame) seen(key []byte) bool {
	if f.many != nil {
		if _, ok := f.many[string(key)]; ok {
			return true
		}
		f.many[string(key)] = struct{}{}
		return false
	}
	for _, k := range f.keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	f.keys = append(f.keys, key)
	if len(f.keys) > maxKeyList {
		f.many = make(map[string]struct{}, 2*len(f.keys))
		for _, k := range f.keys {
			f.many[string(k)] = struct{}{}
		}
		f.keys = nil
	}
	return false
}

type scanner struct {
	b            []byte
	i            int
	stack        []frame
	resourceType string
	// at, when set, is the path of the problem run found (else path()).
	at string
}

// run walks the whole document and returns a description of the first rule
// broken, or "".
func (s *scanner) run() string {
	for {
		s.skipSpace()
		if s.i >= len(s.b) {
			return ""
		}
		c := s.b[s.i]
		switch c {
		case '{', '[':
			s.i++
			s.skipSpace()
			if s.i < len(s.b) && (s.b[s.i] == '}' || s.b[s.i] == ']') {
				if c == '{' {
					return "empty object: FHIR elements must have a value or children"
				}
				return "empty array: FHIR arrays must have at least one element"
			}
			s.stack = append(s.stack, frame{array: c == '['})
		case '}', ']':
			s.i++
			if n := len(s.stack); n > 0 {
				for _, na := range s.stack[n-1].nulls {
					if !s.stack[n-1].seen(append([]byte("_"), na.key...)) {
						s.at = na.path
						return "null value: a null in an array only aligns it with its _" + string(na.key) + " twin, which this element lacks"
					}
				}
				s.stack = s.stack[:n-1]
			}
		case ',':
			s.i++
			if n := len(s.stack); n > 0 && s.stack[n-1].array {
				s.stack[n-1].index++
			}
		case ':':
			s.i++
		case '"':
			start := s.i
			s.skipString()
			raw := s.b[start:s.i]
			if s.atKey(start) {
				top := &s.stack[len(s.stack)-1]
				key := unquoteKey(raw)
				top.key = key
				if top.seen(key) {
					return "duplicate JSON key"
				}
				if upperCaseElement(key) {
					return "unknown field: FHIR element names start with a lower-case letter"
				}
				continue
			}
			if len(raw) == 2 {
				return "empty string: FHIR primitive values must not be empty"
			}
		case 'n':
			n := len(s.stack)
			if n == 0 || !s.stack[n-1].array {
				return "null value: null is only allowed inside arrays"
			}
			if n >= 2 && !s.stack[n-2].array {
				parent := &s.stack[n-2]
				if len(parent.key) > 0 && parent.key[0] != '_' && !hasNullKey(parent.nulls, parent.key) {
					parent.nulls = append(parent.nulls, nullAt{key: bytes.Clone(parent.key), path: s.path()})
				}
			}
			s.skipLiteral()
		default:
			s.skipLiteral()
		}
	}
}

func hasNullKey(nulls []nullAt, key []byte) bool {
	for _, na := range nulls {
		if bytes.Equal(na.key, key) {
			return true
		}
	}
	return false
}

// atKey reports whether the string starting at start is an object key: the
// innermost container is an object and the next significant byte is ':'.
func (s *scanner) atKey(start int) bool {
	n := len(s.stack)
	if n == 0 || s.stack[n-1].array {
		return false
	}
	j := s.i
	for j < len(s.b) && isSpace(s.b[j]) {
		j++
	}
	return j < len(s.b) && s.b[j] == ':'
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

// skipString moves past a string starting at s.i (on its opening quote).
func (s *scanner) skipString() {
	s.i++
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return
		default:
			s.i++
		}
	}
}

// skipLiteral moves past a number, true, false or null.
func (s *scanner) skipLiteral() {
	s.i++
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == ',' || c == '}' || c == ']' || c == ':' || c == '"' || c == '{' || c == '[' || isSpace(c):
			return
		}
		s.i++
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// upperCaseElement reports whether a JSON key, after any "_" prefix of a
// primitive's extension twin, starts with an upper-case ASCII letter.
func upperCaseElement(key []byte) bool {
	k := bytes.TrimPrefix(key, []byte("_"))
	return len(k) > 0 && k[0] >= 'A' && k[0] <= 'Z'
}

// unquoteKey returns the key without quotes, unescaped if it has escapes.
func unquoteKey(raw []byte) []byte {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var k string
	if err := json.Unmarshal(raw, &k); err != nil {
		return inner
	}
	return []byte(k)
}

// path renders the current position as "Type.elem[i].elem". It returns ""
// when a key on the way is not a plausible element name, so that no
// sender-chosen text reaches the message.
func (s *scanner) path() string {
	var sb strings.Builder
	if resourceTypeRE.MatchString(s.resourceType) {
		sb.WriteString(s.resourceType)
	}
	for i, f := range s.stack {
		if f.array {
			sb.WriteString("[" + strconv.Itoa(f.index) + "]")
			continue
		}
		if f.key == nil {
			continue
		}
		if !elementNameRE.Match(f.key) {
			return ""
		}
		if i > 0 || sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.Write(f.key)
	}
	return sb.String()
}
