package linkbridge

import "strings"

// FHIR identifier systems used across the NHS (UK Core).
const (
	// NHSNumberSystem is the UK Core identifier system of the NHS number.
	NHSNumberSystem = "https://fhir.nhs.uk/Id/nhs-number"
	// ODSSystem is the UK Core identifier system of ODS organisation codes.
	ODSSystem = "https://fhir.nhs.uk/Id/ods-organization-code"
	// odsSystemLower is the lower-case variant seen in published BaRS
	// examples; accepted on input and stored as ODSSystem.
	odsSystemLower = "https://fhir.nhs.uk/id/ods-organization-code"
	// SNOMEDSystem is the FHIR system URI of SNOMED CT.
	SNOMEDSystem = "http://snomed.info/sct"
	// LOINCSystem is the FHIR system URI of LOINC.
	LOINCSystem = "http://loinc.org"
)

// NormalizeNHSNumber strips the spaces and hyphens that people type into an
// NHS number and checks it: ten digits whose tenth is the Modulus 11 check
// digit of the first nine (NHSCheckDigit; NHS Data Dictionary, see
// docs/identifiers.md#nhs-number). It returns the ten digits, or an
// EUNPROCESSABLE error that never repeats the number itself.
func NormalizeNHSNumber(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ' || r == '-':
			continue
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			return "", Errorf(EUNPROCESSABLE, "NHS number must contain only digits, spaces or hyphens")
		}
	}
	n := b.String()
	if len(n) != 10 {
		return "", Errorf(EUNPROCESSABLE, "NHS number must have 10 digits, got %d", len(n))
	}
	if !nhsCheckDigitOK(n) {
		return "", Errorf(EUNPROCESSABLE, "NHS number fails the Modulus 11 check")
	}
	return n, nil
}

// NHSCheckDigit computes the Modulus 11 check digit of an NHS number from its
// first nine digits (docs/identifiers.md#nhs-number): each digit is
// multiplied by its weight (10 for the first down to 2 for the ninth), the
// products are summed, and the check digit is 11 minus the remainder of the
// sum divided by 11, with 11 becoming 0. ok is false when first9 is not
// exactly nine ASCII digits, or when the result is 10: no valid NHS number
// starts with those nine digits.
func NHSCheckDigit(first9 string) (digit int, ok bool) {
	if len(first9) != 9 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 9; i++ {
		d := first9[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		sum += int(d-'0') * (10 - i)
	}
	digit = 11 - sum%11
	switch digit {
	case 11:
		return 0, true
	case 10:
		return 0, false
	}
	return digit, true
}

// nhsCheckDigitOK reports whether ten ASCII digits end with the Modulus 11
// check digit of the first nine (NHSCheckDigit).
func nhsCheckDigitOK(n string) bool {
	d, ok := NHSCheckDigit(n[:9])
	return ok && int(n[9]-'0') == d
}

// IsODSSystem reports whether system names ODS organisation codes, in the
// canonical or the lower-case "/id/" spelling seen in real messages.
func IsODSSystem(system string) bool {
	return system == ODSSystem || system == odsSystemLower
}

// NormalizeODSCode checks an ODS organisation code (1 to 9 letters and
// digits; docs/identifiers.md#ods-codes) and returns it upper-cased.
func NormalizeODSCode(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) < 1 || len(s) > 9 {
		return "", Errorf(EUNPROCESSABLE, "ODS code must have 1 to 9 characters")
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return "", Errorf(EUNPROCESSABLE, "ODS code must contain only letters and digits")
		}
	}
	return strings.ToUpper(s), nil
}

// Verhoeff tables (dihedral group D5 multiplication, permutation, inverse).
var (
	verhoeffD = [10][10]int{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
		{2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
		{4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
		{6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
		{8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
	}
	verhoeffP = [8][10]int{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
		{5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
		{9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
		{2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
	}
)

// ValidSCTID reports whether s is a well-formed SNOMED CT identifier: 6 to 18
// digits, no leading zero, and a valid Verhoeff check digit
// (docs/identifiers.md#snomed-ct-identifiers).
func ValidSCTID(s string) bool {
	if len(s) < 6 || len(s) > 18 || s[0] == '0' {
		return false
	}
	c := 0
	for i := 0; i < len(s); i++ {
		d := s[len(s)-1-i]
		if d < '0' || d > '9' {
			return false
		}
		c = verhoeffD[c][verhoeffP[i%8][d-'0']]
	}
	return c == 0
}

// NHSNumberRange says where a valid NHS number lies (docs/identifiers.md,
// "Number ranges"; the ranges are UNCONFIRMED by a primary source, so the
// gateway can be told to accept any range).
type NHSNumberRange int

// NHS number ranges.
const (
	// NHSRangeNotIssued: no NHS number is issued here (0xx–2xx are
	// Scotland's CHI numbers, 5xx and 8xx are unallocated, and 000 000 0000
	// passes Modulus 11 but was never issued).
	NHSRangeNotIssued NHSNumberRange = iota
	// NHSRangeIssued: 300–499 and 600–799 million, issued in England,
	// Wales and the Isle of Man (320–399 million also Northern Ireland's
	// Health and Care numbers).
	NHSRangeIssued
	// NHSRangeTest: 900–999 million, the numbers NHS test environments and
	// published examples use (999 000 0000–999 999 9999 never issued).
	NHSRangeTest
)

// NHSNumberRangeOf returns the range of a ten-digit NHS number (checked
// with NormalizeNHSNumber first).
func NHSNumberRangeOf(n string) NHSNumberRange {
	if len(n) != 10 {
		return NHSRangeNotIssued
	}
	switch n[0] {
	case '3', '4', '6', '7':
		return NHSRangeIssued
	case '9':
		return NHSRangeTest
	}
	return NHSRangeNotIssued
}
