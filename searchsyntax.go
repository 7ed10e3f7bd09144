package linkbridge

import "strings"

// FHIR search values give ",", "|" and "$" a meaning (a comma separates
// values to OR, "|" separates a token's system from its value, "$" the
// parts of a composite); a value that holds one of them literally escapes
// it with a backslash, which escapes itself too: `\,`, `\|`, `\$`, `\\`
// (FHIR R4 search.html#escaping; docs/referral-exchange.md#search-parameters).
// A backslash before any other character, or at the end, is kept as it
// is.

// SplitSearchValues splits one occurrence of a search parameter's value at
// its unescaped commas, each part trimmed of spaces; a part may be empty
// ("a,,b"), for the caller to drop or refuse. The parts keep their escapes
// (a token's `\|` must still be told from its separator): CutToken or
// UnescapeSearchValue reads each.
func SplitSearchValues(v string) []string {
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++ // the escaped character, whatever it is, is not a separator
		case ',':
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(v[start:]))
}

// UnescapeSearchValue returns a search value with its escapes read: `\,`,
// `\|`, `\$` and `\\` become the character they escape.
func UnescapeSearchValue(v string) string {
	i := strings.IndexByte(v, '\\')
	if i < 0 {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	b.WriteString(v[:i])
	for ; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			switch v[i+1] {
			case ',', '|', '$', '\\':
				i++
				c = v[i]
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// EscapeSearchValue escapes the characters a search value gives a meaning
// (`\`, `,`, `|`, `$`), so that v is read back as itself: one value, or
// the value part of a "system|value" token.
func EscapeSearchValue(v string) string {
	if !strings.ContainsAny(v, `\,|$`) {
		return v
	}
	var b strings.Builder
	b.Grow(len(v) + 4)
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\', ',', '|', '$':
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// CutToken reads a token search value (FHIR R4 search.html#token):
// "system|value", "|value" (no system) or a value alone (any system),
// split at the first unescaped "|", each part unescaped. bySystem tells
// whether the value names a system or its absence.
func CutToken(v string) (system, value string, bySystem bool) {
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '|':
			return UnescapeSearchValue(v[:i]), UnescapeSearchValue(v[i+1:]), true
		}
	}
	return "", UnescapeSearchValue(v), false
}

// MatchesAny reports whether the indexed value p matches any of values,
// each read as a token search value (CutToken): a value alone matches
// p.Value whatever its system, "system|value" p.Value in that system, and
// "|value" p.Value with no system. A value that is not a token (a
// reference "Type/id", a status) has no "|" and is matched as it is.
func (p SearchParam) MatchesAny(values []string) bool {
	for _, v := range values {
		sys, val, bySystem := CutToken(v)
		if val == p.Value && (!bySystem || sys == p.System) {
			return true
		}
	}
	return false
}
