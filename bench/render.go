package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// renderer renders the seed's FHIR resources as fhirjson.Codec.Encode
// does, byte for byte, at a fraction of its cost: google/fhir's
// jsonformat renders each resource *shape* once, and the values are then
// put into that rendering for every resource of the same shape.
//
// A resource's shape is the resource with its values replaced by
// placeholders: every string (ids, references, codes held as strings,
// text, decimals), every 32-bit integer and every UTC date, dateTime and
// instant. What is left (which elements are present, enums, booleans,
// precisions) decides the rendering's structure and is the cache key.
// On a miss the shape is rendered through the codec, the placeholders
// are located in it, and the template is checked: the real resource is
// rendered through the codec too and must equal the template filled with
// its values, or the shape is never templated (its resources are all
// rendered through the codec). A hit fills the template: strings are
// escaped as jsonformat's encoder escapes them (encoding/json, no HTML
// escaping), dates formatted with jsonformat's layouts.
type renderer struct {
	codec *fhirjson.Codec
	// verify, set by tests, checks every hit against the codec too.
	verify bool

	mu    sync.RWMutex
	cache map[string]*template // nil value: the shape is not templated

	hits, misses atomic.Int64
}

// maxTemplates bounds the cache; past it new shapes are rendered through
// the codec.
const maxTemplates = 50_000

// template is a shape's rendering: literal bytes and, between them, the
// slots the values go in.
type template struct {
	parts []templatePart
}

// templatePart is literal bytes, or (lit nil) the value of slot.
type templatePart struct {
	lit  []byte
	slot int
}

func newRenderer(codec *fhirjson.Codec) *renderer {
	return &renderer{codec: codec, cache: map[string]*template{}}
}

// Well-known google/fhir R4 datatypes whose rendering the renderer
// reproduces.
const (
	fhirDate     protoreflect.FullName = "google.fhir.r4.core.Date"
	fhirDateTime protoreflect.FullName = "google.fhir.r4.core.DateTime"
	fhirInstant  protoreflect.FullName = "google.fhir.r4.core.Instant"
	// A decimal is rendered as a JSON number from its string, which must
	// then be one: decimals stay in the shape.
	fhirDecimal protoreflect.FullName = "google.fhir.r4.core.Decimal"
)

// Encode renders m (an R4 resource, not modified) as the codec would.
func (r *renderer) Encode(m proto.Message) ([]byte, error) {
	shape := proto.Clone(m)
	var vals []string
	if !placehold(shape.ProtoReflect(), &vals) {
		return r.codec.Encode(m)
	}
	kb, err := proto.MarshalOptions{Deterministic: true}.Marshal(shape)
	if err != nil {
		return nil, err
	}
	key := string(shape.ProtoReflect().Descriptor().FullName()) + "\x00" + string(kb)
	r.mu.RLock()
	t, ok := r.cache[key]
	r.mu.RUnlock()
	if ok {
		if t == nil {
			return r.codec.Encode(m)
		}
		r.hits.Add(1)
		out := t.fill(vals)
		if r.verify {
			want, err := r.codec.Encode(m)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(out, want) {
				return nil, fmt.Errorf("bench: template of %s renders\n%s\nnot\n%s", shape.ProtoReflect().Descriptor().Name(), out, want)
			}
		}
		return out, nil
	}
	r.misses.Add(1)
	want, err := r.codec.Encode(m)
	if err != nil {
		return nil, err
	}
	t = nil
	if b, err := r.codec.Encode(shape); err == nil {
		if tt := newTemplate(b, len(vals)); tt != nil && bytes.Equal(tt.fill(vals), want) {
			t = tt
		}
	}
	r.mu.Lock()
	if len(r.cache) < maxTemplates {
		r.cache[key] = t
	}
	r.mu.Unlock()
	return want, nil
}

// Placeholders: slot k's string is "zqx<k>xqz", its integer
// 1900000000+k, its date or time 2700+k-01-01T00:00:00Z at its
// precision. None of them can occur in a rendering but as themselves.
func stringToken(k int) string { return stringTokens[k] }

// stringTokens are the string placeholders, made once.
var stringTokens = func() []string {
	t := make([]string, maxSlots)
	for k := range t {
		t[k] = "zqx" + strconv.Itoa(k) + "xqz"
	}
	return t
}()

const intToken = 1_900_000_000

func timeToken(k int) time.Time { return time.Date(2700+k, 1, 1, 0, 0, 0, 0, time.UTC) }

// maxSlots bounds a shape's values (the date placeholders' years).
const maxSlots = 1000

// placehold replaces m's values by placeholders in place, appending each
// value's JSON rendering (without quotes) to vals, and reports whether m
// can be templated.
func placehold(m protoreflect.Message, vals *[]string) bool {
	switch m.Descriptor().FullName() {
	case fhirDate, fhirDateTime, fhirInstant:
		return placeholdTime(m, vals)
	case fhirDecimal:
		return true
	}
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if len(*vals) >= maxSlots {
			ok = false
			return false
		}
		switch {
		case fd.IsMap():
			ok = false
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				nv, good := placeholdValue(fd, l.Get(i), vals)
				if !good {
					ok = false
					return false
				}
				if nv.IsValid() {
					l.Set(i, nv)
				}
			}
		default:
			nv, good := placeholdValue(fd, v, vals)
			if !good {
				ok = false
				return false
			}
			if nv.IsValid() {
				m.Set(fd, nv)
			}
		}
		return ok
	})
	return ok
}

// placeholdValue returns the placeholder of one value (invalid: keep v,
// a message placeheld in place or a value of the shape).
func placeholdValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, vals *[]string) (protoreflect.Value, bool) {
	k := len(*vals)
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if fd.Message().FullName() == "google.protobuf.Any" {
			return protoreflect.Value{}, false
		}
		return protoreflect.Value{}, placehold(v.Message(), vals)
	case protoreflect.StringKind:
		*vals = append(*vals, jsonEscape(v.String()))
		return protoreflect.ValueOfString(stringToken(k)), true
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		*vals = append(*vals, strconv.FormatInt(v.Int(), 10))
		return protoreflect.ValueOfInt32(int32(intToken + k)), true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		*vals = append(*vals, strconv.FormatUint(v.Uint(), 10))
		return protoreflect.ValueOfUint32(uint32(intToken + k)), true
	}
	return protoreflect.Value{}, true
}

// placeholdTime replaces a UTC date, dateTime or instant's time by a
// placeholder; other time zones stay in the shape.
func placeholdTime(m protoreflect.Message, vals *[]string) bool {
	fields := m.Descriptor().Fields()
	us, tz, prec := fields.ByName("value_us"), fields.ByName("timezone"), fields.ByName("precision")
	if us == nil || tz == nil || prec == nil || m.Get(tz).String() != "Z" {
		return true
	}
	layout := timeLayout(m.Descriptor().FullName(), m.Get(prec).Enum(), prec.Enum())
	if layout == "" {
		return true
	}
	k := len(*vals)
	*vals = append(*vals, time.UnixMicro(m.Get(us).Int()).UTC().Format(layout))
	m.Set(us, protoreflect.ValueOfInt64(timeToken(k).UnixMicro()))
	return true
}

// timeLayout is jsonformat's layout of a UTC value of the precision
// ("" for one the renderer does not reproduce).
func timeLayout(typ protoreflect.FullName, p protoreflect.EnumNumber, ed protoreflect.EnumDescriptor) string {
	v := ed.Values().ByNumber(p)
	if v == nil {
		return ""
	}
	switch v.Name() {
	case "YEAR":
		return "2006"
	case "MONTH":
		return "2006-01"
	case "DAY":
		return "2006-01-02"
	case "SECOND":
		return "2006-01-02T15:04:05Z"
	case "MILLISECOND":
		return "2006-01-02T15:04:05.000Z"
	case "MICROSECOND":
		return "2006-01-02T15:04:05.000000Z"
	}
	return ""
}

// jsonEscape is s as encoding/json writes it inside quotes with HTML
// escaping off (as jsonformat's encoder), without the quotes.
func jsonEscape(s string) string {
	plain := true
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return string(out[1 : len(out)-1])
}

// newTemplate locates the n slots' placeholders in b, the rendering of a
// shape; nil if one is missing. The time placeholders are found at any of
// the layouts (the shape's precision decides which one b has).
func newTemplate(b []byte, n int) *template {
	type hit struct{ at, end, slot int }
	var hits []hit
	for k := range n {
		found := false
		for _, tok := range slotTokens(k) {
			for from := 0; ; {
				i := bytes.Index(b[from:], []byte(tok))
				if i < 0 {
					break
				}
				at := from + i
				// An integer placeholder is a whole number, not a prefix.
				if end := at + len(tok); end < len(b) && b[end] >= '0' && b[end] <= '9' {
					from = end
					continue
				}
				hits = append(hits, hit{at, at + len(tok), k})
				found = true
				from = at + len(tok)
			}
			if found {
				break
			}
		}
		if !found {
			return nil
		}
	}
	// Order the hits by position; they cannot overlap.
	for i := 1; i < len(hits); i++ {
		for j := i; j > 0 && hits[j].at < hits[j-1].at; j-- {
			hits[j], hits[j-1] = hits[j-1], hits[j]
		}
	}
	t := &template{}
	pos := 0
	for _, h := range hits {
		if h.at < pos {
			return nil
		}
		t.parts = append(t.parts, templatePart{lit: b[pos:h.at:h.at], slot: -1}, templatePart{slot: h.slot})
		pos = h.end
	}
	t.parts = append(t.parts, templatePart{lit: b[pos:], slot: -1})
	return t
}

// slotTokens are the renderings slot k's placeholder may have, longest
// first.
func slotTokens(k int) []string {
	tt := timeToken(k)
	return []string{
		stringToken(k),
		strconv.Itoa(intToken + k),
		tt.Format("2006-01-02T15:04:05.000000Z"), tt.Format("2006-01-02T15:04:05.000Z"), tt.Format("2006-01-02T15:04:05Z"),
		tt.Format("2006-01-02"), tt.Format("2006-01"), tt.Format("2006"),
	}
}

// fill renders the template with vals.
func (t *template) fill(vals []string) []byte {
	n := 0
	for _, p := range t.parts {
		if p.slot < 0 {
			n += len(p.lit)
		} else {
			n += len(vals[p.slot])
		}
	}
	out := make([]byte, 0, n)
	for _, p := range t.parts {
		if p.slot < 0 {
			out = append(out, p.lit...)
		} else {
			out = append(out, vals[p.slot]...)
		}
	}
	return out
}
