package linkbridge_test

import (
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
)

func TestNormalizeNHSNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // "" means an error is expected
	}{
		{"OK", "9434765919", "9434765919"},
		{"OKSecond", "4010232137", "4010232137"},
		{"OKSpaces", "943 476 5919", "9434765919"},
		{"OKHyphens", "943-476-5919", "9434765919"},
		{"OKMixedSeparators", " 401-023 2137 ", "4010232137"},
		{"OKCheckDigitElevenIsZero", "9876543210", "9876543210"}, // 11 - (sum mod 11) = 11 → 0
		{"OKBaRSBookingExample", "9476719931", "9476719931"},
		{"OKUKCoreExample", "9912003888", "9912003888"},
		{"ErrFailsModulus11", "3478526985", ""}, // BaRS ValidationRequest example
		{"ErrWrongCheckDigit", "9434765918", ""},
		{"ErrCheckDigitTen", "1234567890", ""}, // 11 - (sum mod 11) = 10: no number with this stem is valid
		{"ErrCheckDigitTenAnyDigit", "1234567891", ""},
		{"ErrTooShort", "943476591", ""},
		{"ErrTooLong", "94347659190", ""},
		{"ErrEmpty", "", ""},
		{"ErrOnlySeparators", " - ", ""},
		{"ErrLetters", "94347659I9", ""},
		{"ErrLeadingLetters", "NHS9434765919", ""},
		{"ErrDots", "943.476.5919", ""},
		{"ErrUnicodeDigits", "٩٤٣٤٧٦٥٩١٩", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := linkbridge.NormalizeNHSNumber(tt.in)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("NormalizeNHSNumber(%q) returned unexpected error: %v", tt.in, err)
				}
				if got != tt.want {
					t.Errorf("NormalizeNHSNumber(%q) = %q, want %q", tt.in, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("NormalizeNHSNumber(%q) = %q, want an error", tt.in, got)
			}
			if code := linkbridge.ErrorCode(err); code != linkbridge.EUNPROCESSABLE {
				t.Errorf("ErrorCode = %q, want %q", code, linkbridge.EUNPROCESSABLE)
			}
			// The message is shown to callers and logged: it must never
			// repeat the number.
			if digits := strings.Map(keepDigits, tt.in); len(digits) >= 6 && strings.Contains(err.Error(), digits) {
				t.Errorf("error %q repeats the NHS number", err)
			}
		})
	}
}

func TestNHSCheckDigit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		first9 string
		digit  int
		ok     bool
	}{
		{"OK", "943476591", 9, true},
		{"OKSecond", "401023213", 7, true},
		{"OKBaRSBookingExample", "947671993", 1, true},
		{"OKUKCoreExample", "991200388", 8, true},
		{"OKElevenIsZero", "987654321", 0, true}, // 11 - (sum mod 11) = 11 → 0
		{"OKAllZeros", "000000000", 0, true},     // sum 0: 11 → 0
		{"OKAllNines", "999999999", 9, true},
		{"OKBaRSValidationStem", "347852698", 1, true}, // so 3478526985 fails
		{"ErrTenIsInvalid", "123456789", 0, false},     // 11 - (sum mod 11) = 10
		{"ErrEmpty", "", 0, false},
		{"ErrEightDigits", "94347659", 0, false},
		{"ErrTenDigits", "9434765919", 0, false},
		{"ErrSpace", "943 76591", 0, false},
		{"ErrLetter", "94347659I", 0, false},
		{"ErrUnicodeDigits", "٩٤٣٤٧٦٥٩١", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			digit, ok := linkbridge.NHSCheckDigit(tt.first9)
			if digit != tt.digit || ok != tt.ok {
				t.Errorf("NHSCheckDigit(%q) = %d, %v, want %d, %v", tt.first9, digit, ok, tt.digit, tt.ok)
			}
		})
	}
}

// FuzzNHSCheckDigit checks NHSCheckDigit against NormalizeNHSNumber: when a
// check digit exists, exactly the number ending in it is valid; when none
// does, no ending is.
func FuzzNHSCheckDigit(f *testing.F) {
	for _, s := range []string{"943476591", "987654321", "123456789", "", "94347659I"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, first9 string) {
		digit, ok := linkbridge.NHSCheckDigit(first9)
		if ok && (digit < 0 || digit > 9) {
			t.Fatalf("NHSCheckDigit(%q) = %d, true: not a digit", first9, digit)
		}
		if !ok && digit != 0 {
			t.Fatalf("NHSCheckDigit(%q) = %d, false: want 0", first9, digit)
		}
		if len(first9) != 9 || strings.Trim(first9, "0123456789") != "" {
			if ok {
				t.Fatalf("NHSCheckDigit(%q) accepted a stem that is not nine ASCII digits", first9)
			}
			return
		}
		for d := 0; d <= 9; d++ {
			_, err := linkbridge.NormalizeNHSNumber(first9 + string(rune('0'+d)))
			if want := ok && d == digit; (err == nil) != want {
				t.Fatalf("NHSCheckDigit(%q) = %d, %v but NormalizeNHSNumber(%q) error = %v", first9, digit, ok, first9+string(rune('0'+d)), err)
			}
		}
	})
}

func keepDigits(r rune) rune {
	if r >= '0' && r <= '9' {
		return r
	}
	return -1
}

func TestNormalizeODSCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // "" means an error is expected
	}{
		{"OKPractice", "A81001", "A81001"},
		{"OKLowerCase", "a81001", "A81001"},
		{"OKTrimmed", "  Y02662 ", "Y02662"},
		{"OKTrust", "RR8", "RR8"},
		{"OKOneChar", "X", "X"},
		{"OKNineChars", "ABCDE1234", "ABCDE1234"},
		{"ErrEmpty", "", ""},
		{"ErrBlank", "   ", ""},
		{"ErrTenChars", "ABCDE12345", ""},
		{"ErrHyphen", "A81-001", ""},
		{"ErrInnerSpace", "A81 001", ""},
		{"ErrNonASCIILetter", "Ä81001", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := linkbridge.NormalizeODSCode(tt.in)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("NormalizeODSCode(%q) returned unexpected error: %v", tt.in, err)
				}
				if got != tt.want {
					t.Errorf("NormalizeODSCode(%q) = %q, want %q", tt.in, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("NormalizeODSCode(%q) = %q, want an error", tt.in, got)
			}
			if code := linkbridge.ErrorCode(err); code != linkbridge.EUNPROCESSABLE {
				t.Errorf("ErrorCode = %q, want %q", code, linkbridge.EUNPROCESSABLE)
			}
		})
	}
}

func TestIsODSSystem(t *testing.T) {
	t.Parallel()
	for sys, want := range map[string]bool{
		"https://fhir.nhs.uk/Id/ods-organization-code": true,
		"https://fhir.nhs.uk/id/ods-organization-code": true, // BaRS examples
		"http://fhir.nhs.uk/Id/ods-organization-code":  false,
		"https://fhir.nhs.uk/Id/ods-site-code":         false,
		"https://fhir.nhs.uk/ID/ODS-ORGANIZATION-CODE": false,
		"": false,
		"https://fhir.nhs.uk/Id/ods-organization-code/": false,
	} {
		if got := linkbridge.IsODSSystem(sys); got != want {
			t.Errorf("IsODSSystem(%q) = %v, want %v", sys, got, want)
		}
	}
}

func TestValidSCTID(t *testing.T) {
	t.Parallel()
	valid := []string{
		"871731000000106",  // Referral to social prescribing service
		"871711000000103",  // Social prescribing declined
		"267076002",        // Feeling lonely
		"422650009",        // Social isolation
		"3457005",          // Patient referral
		"1127531000000102", // Services simple reference set
		"718466001",        // SWEMWBS score
		"2140231000000104", // Referral to Community Pharmacy Pharmacy First Service
	}
	for _, s := range valid {
		if !linkbridge.ValidSCTID(s) {
			t.Errorf("ValidSCTID(%q) = false, want true", s)
		}
		// Every one-digit change breaks the Verhoeff check digit.
		for i := 0; i < len(s); i++ {
			for d := byte('0'); d <= '9'; d++ {
				if d == s[i] || (i == 0 && d == '0') {
					continue
				}
				mut := s[:i] + string(d) + s[i+1:]
				if linkbridge.ValidSCTID(mut) {
					t.Errorf("ValidSCTID(%q) = true (one-digit change of %s at %d), want false", mut, s, i)
				}
			}
		}
		// So does swapping two different adjacent digits.
		for i := 0; i+1 < len(s); i++ {
			if s[i] == s[i+1] || (i == 0 && s[1] == '0') {
				continue
			}
			mut := s[:i] + string(s[i+1]) + string(s[i]) + s[i+2:]
			if linkbridge.ValidSCTID(mut) {
				t.Errorf("ValidSCTID(%q) = true (adjacent swap of %s at %d), want false", mut, s, i)
			}
		}
	}
	invalid := map[string]string{
		"ErrEmpty":        "",
		"ErrTooShort":     "12345",
		"ErrTooLong":      "1234567890123456789",
		"ErrLeadingZero":  "0267076002",
		"ErrLetters":      "26707600A",
		"ErrSpace":        "267 076 002",
		"ErrEMISLocal":    "EMISNQRE582",
		"ErrCheckDigit":   "871731000000107",
		"ErrNegativeSign": "-267076002",
	}
	for name, s := range invalid {
		if linkbridge.ValidSCTID(s) {
			t.Errorf("%s: ValidSCTID(%q) = true, want false", name, s)
		}
	}
}

func TestIsSocialPrescribingCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    linkbridge.Coding
		want bool
	}{
		{linkbridge.Coding{System: linkbridge.SNOMEDSystem, Code: linkbridge.SCTReferralToSocialPrescribing}, true},
		{linkbridge.Coding{Code: linkbridge.EMISLocalSocialPrescribingReferral}, true},
		{linkbridge.Coding{System: "http://example.org/local", Code: linkbridge.SCTReferralToSocialPrescribing}, false},
		{linkbridge.Coding{System: linkbridge.SNOMEDSystem, Code: linkbridge.SCTSocialPrescribingDeclined}, false},
		{linkbridge.Coding{System: linkbridge.SNOMEDSystem, Code: "267076002"}, false},
	}
	for _, tt := range tests {
		if got := linkbridge.IsSocialPrescribingCode(tt.c); got != tt.want {
			t.Errorf("IsSocialPrescribingCode(%+v) = %v, want %v", tt.c, got, tt.want)
		}
	}
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want linkbridge.Identifier
	}{
		{"https://fhir.nhs.uk/Id/nhs-number|9434765919", linkbridge.Identifier{System: "https://fhir.nhs.uk/Id/nhs-number", Value: "9434765919"}},
		{"9434765919", linkbridge.Identifier{Value: "9434765919"}},
		{"|REF-1", linkbridge.Identifier{Value: "REF-1"}},
		{"sys|a|b", linkbridge.Identifier{System: "sys", Value: "a|b"}},
	}
	for _, tt := range tests {
		got := linkbridge.ParseToken(tt.in)
		if got != tt.want {
			t.Errorf("ParseToken(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if tt.want.System != "" && got.String() != tt.in {
			t.Errorf("ParseToken(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestNHSNumberRangeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    string
		want linkbridge.NHSNumberRange
	}{
		{"0000000000", linkbridge.NHSRangeNotIssued}, // passes Modulus 11, never issued
		{"0101000000", linkbridge.NHSRangeNotIssued}, // a Scottish CHI number's range
		{"5000000000", linkbridge.NHSRangeNotIssued},
		{"8000000000", linkbridge.NHSRangeNotIssued},
		{"4010232137", linkbridge.NHSRangeIssued},
		{"3000000000", linkbridge.NHSRangeIssued},
		{"7999999999", linkbridge.NHSRangeIssued},
		{"9434765919", linkbridge.NHSRangeTest},
		{"9990000000", linkbridge.NHSRangeTest},
		{"123", linkbridge.NHSRangeNotIssued},
	}
	for _, tc := range tests {
		if got := linkbridge.NHSNumberRangeOf(tc.n); got != tc.want {
			t.Errorf("NHSNumberRangeOf(%s) = %v, want %v", tc.n, got, tc.want)
		}
	}
}
