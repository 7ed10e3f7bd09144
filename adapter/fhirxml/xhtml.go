package fhirxml

import (
	"bytes"
	"encoding/xml"
	"strings"
	"unicode/utf8"
)

// xmlNS is the namespace the "xml" prefix is bound to (xml:lang).
const xmlNS = "http://www.w3.org/XML/1998/namespace"

// writeXHTML copies the element start (already read from d: Narrative.div)
// and its content to w as canonical XHTML: the root div declares the XHTML
// namespace, no element carries a prefix, comments are dropped, and
// everything is re-escaped, so what is written is well-formed whatever the
// input spelling was. The content must be XHTML: an element in another
// namespace, an attribute in a namespace other than xml:, a processing
// instruction or a DOCTYPE is an error at path. depth is the nesting depth
// of start; the content may nest down to MaxDepth.
func writeXHTML(d *xml.Decoder, start xml.StartElement, w *bytes.Buffer, path string, depth int) error {
	if start.Name.Space != xhtmlNS || start.Name.Local != "div" {
		return invalidf(path, "narrative div must be an XHTML div element (namespace %s)", xhtmlNS)
	}
	if err := writeXHTMLStart(w, start, path, true); err != nil {
		return err
	}
	open := true // start tag not yet closed with ">"
	level := 1
	for level > 0 {
		tok, err := d.Token()
		if err != nil {
			return xmlError(path, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if open {
				w.WriteByte('>')
			}
			if t.Name.Space != xhtmlNS {
				return invalidf(path, "narrative div holds an element that is not XHTML")
			}
			if depth+level >= MaxDepth {
				return tooDeep(path)
			}
			if err := writeXHTMLStart(w, t, path, false); err != nil {
				return err
			}
			open = true
			level++
		case xml.EndElement:
			if open {
				w.WriteString("/>")
			} else {
				w.WriteString("</")
				w.WriteString(t.Name.Local)
				w.WriteByte('>')
			}
			open = false
			level--
		case xml.CharData:
			if open {
				w.WriteByte('>')
				open = false
			}
			if err := checkXMLChars(string(t), path); err != nil {
				return err
			}
			escapeText(w, string(t))
		case xml.Comment:
		case xml.ProcInst:
			return invalidf(path, "processing instructions are not allowed in FHIR XML")
		case xml.Directive:
			return invalidf(path, "DOCTYPE and other directives are not allowed in FHIR XML")
		}
	}
	return nil
}

// writeXHTMLStart writes "<name attrs" (the caller closes the tag).
func writeXHTMLStart(w *bytes.Buffer, se xml.StartElement, path string, root bool) error {
	w.WriteByte('<')
	w.WriteString(se.Name.Local)
	if root {
		w.WriteString(` xmlns="` + xhtmlNS + `"`)
	}
	for _, a := range se.Attr {
		var name string
		switch {
		case a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns":
			// Namespace declarations: the elements were checked to be XHTML;
			// the root declares it again.
			continue
		case a.Name.Space == "":
			name = a.Name.Local
		case a.Name.Space == xmlNS || a.Name.Space == "xml":
			name = "xml:" + a.Name.Local
		default:
			return invalidf(path, "narrative div holds an attribute in a namespace other than xml")
		}
		if err := checkXMLChars(a.Value, path); err != nil {
			return err
		}
		w.WriteByte(' ')
		w.WriteString(name)
		w.WriteString(`="`)
		escapeXHTMLAttr(w, a.Value)
		w.WriteByte('"')
	}
	return nil
}

// parseDiv checks that s (a JSON Narrative.div) is exactly one XHTML div
// element and writes its canonical form (see writeXHTML) to w. verbatim
// reports whether s may be used as it is instead: it is that element and
// nothing else (no surrounding whitespace, comment or XML declaration), and
// it declares every namespace it uses itself, as parsing it standalone
// proves.
func parseDiv(s string, w *bytes.Buffer, path string, depth int) (verbatim bool, err error) {
	d := newXMLDecoder(strings.NewReader(s))
	seen := false
	verbatim = true
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			if isEOF(err) && seen {
				return verbatim, nil
			}
			if isEOF(err) {
				return false, invalidf(path, "narrative div is empty: expected an XHTML div element")
			}
			return false, invalidf(path, "narrative div is not well-formed XHTML")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if seen {
				return false, invalidf(path, "narrative div holds more than one element")
			}
			seen = true
			verbatim = verbatim && off == 0
			if err := writeXHTML(d, t, w, path, depth); err != nil {
				return false, err
			}
			verbatim = verbatim && d.InputOffset() == int64(len(s))
		case xml.CharData:
			if !isSpace(t) {
				return false, invalidf(path, "narrative div has text outside the div element")
			}
		case xml.Comment:
		case xml.ProcInst:
			return false, invalidf(path, "processing instructions are not allowed in FHIR XML")
		case xml.Directive:
			return false, invalidf(path, "DOCTYPE and other directives are not allowed in FHIR XML")
		}
	}
}

// Escape sets: what each kind of XML output writes as a reference. The
// three differ only in these bytes.
var (
	// textEscapes are for character data.
	textEscapes = newEscapeSet(map[byte]string{'&': "&amp;", '<': "&lt;", '>': "&gt;", '\r': "&#xD;"})
	// xhtmlAttrEscapes are for narrative XHTML attribute values: tab and
	// newline stay as they are (narrative generators write them raw, and
	// encoding/xml reads them back unchanged).
	xhtmlAttrEscapes = newEscapeSet(map[byte]string{'&': "&amp;", '<': "&lt;", '"': "&quot;", '\r': "&#xD;"})
	// attrEscapes are for double-quoted attribute values: tab, newline and
	// carriage return as character references, so attribute value
	// normalisation leaves them as they were.
	attrEscapes = newEscapeSet(map[byte]string{'&': "&amp;", '<': "&lt;", '>': "&gt;", '"': "&quot;", '\t': "&#x9;", '\n': "&#xA;", '\r': "&#xD;"})
)

// escapeSet holds, per byte, the reference an output writes it as ("":
// the byte itself); an array, so the lookup per byte costs what a switch
// does.
type escapeSet *[256]string

func newEscapeSet(m map[byte]string) escapeSet {
	var set [256]string
	for b, esc := range m {
		set[b] = esc
	}
	return &set
}

// escapeWith writes s with set's bytes escaped.
func escapeWith(set escapeSet, w *bytes.Buffer, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		esc := set[s[i]]
		if esc == "" {
			continue
		}
		w.WriteString(s[last:i])
		w.WriteString(esc)
		last = i + 1
	}
	w.WriteString(s[last:])
}

// escapeText writes s as XML character data.
func escapeText(w *bytes.Buffer, s string) { escapeWith(textEscapes, w, s) }

// escapeXHTMLAttr writes s as a double-quoted attribute value of narrative
// XHTML.
func escapeXHTMLAttr(w *bytes.Buffer, s string) { escapeWith(xhtmlAttrEscapes, w, s) }

// escapeAttr writes s as a double-quoted XML attribute value.
func escapeAttr(w *bytes.Buffer, s string) { escapeWith(attrEscapes, w, s) }

// checkXMLChars returns an error at path when s holds a character XML 1.0
// cannot carry (controls other than tab, newline and carriage return,
// U+FFFE, U+FFFF, or invalid UTF-8).
func checkXMLChars(s, path string) error {
	for _, r := range s {
		switch {
		case r == 0x09 || r == 0x0A || r == 0x0D:
		case r < 0x20:
			return invalidf(path, "control character not allowed in FHIR XML")
		case r == 0xFFFE || r == 0xFFFF:
			return invalidf(path, "character not allowed in FHIR XML")
		}
	}
	if !utf8.ValidString(s) {
		return invalidf(path, "invalid UTF-8")
	}
	return nil
}

func isSpace(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}
