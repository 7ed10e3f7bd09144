package fhirxml

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// object is a JSON object whose keys keep the order they were added in.
type object struct {
	keys []string
	vals []any // string, json.Number, bool, nil, *object or []any
}

func (o *object) add(k string, v any) {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

func (o *object) empty() bool { return len(o.keys) == 0 }

// writeJSON writes v compactly. Strings are escaped as JSON requires and no
// more: "<", ">" and "&" stay as they are, so a narrative div reads as XHTML.
func writeJSON(w *bytes.Buffer, v any) {
	switch v := v.(type) {
	case nil:
		w.WriteString("null")
	case string:
		writeJSONString(w, v)
	case json.Number:
		w.WriteString(string(v))
	case bool:
		w.WriteString(strconv.FormatBool(v))
	case *object:
		w.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				w.WriteByte(',')
			}
			writeJSONString(w, k)
			w.WriteByte(':')
			writeJSON(w, v.vals[i])
		}
		w.WriteByte('}')
	case []any:
		w.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				w.WriteByte(',')
			}
			writeJSON(w, e)
		}
		w.WriteByte(']')
	default:
		panic("fhirxml: writeJSON: unexpected type")
	}
}

const hexDigits = "0123456789abcdef"

func writeJSONString(w *bytes.Buffer, s string) {
	w.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			w.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				w.WriteByte('\\')
				w.WriteByte(c)
			case '\n':
				w.WriteString(`\n`)
			case '\r':
				w.WriteString(`\r`)
			case '\t':
				w.WriteString(`\t`)
			default:
				w.WriteString(`\u00`)
				w.WriteByte(hexDigits[c>>4])
				w.WriteByte(hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			w.WriteString(s[start:i])
			if r == utf8.RuneError {
				w.WriteString(`\ufffd`)
			} else {
				w.WriteString(`\u202`)
				w.WriteByte(hexDigits[r&0xF])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	w.WriteString(s[start:])
	w.WriteByte('"')
}
