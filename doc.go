// Package linkbridge is the domain of the linkbridge gateway: the language of
// social prescribing referrals (people, referrals, the referral Task state
// machine), the identifier rules of the NHS (NHS number Modulus 11, ODS codes,
// SNOMED CT Verhoeff check digits), the application error type, and the Store
// contract that the SQLite and PostgreSQL adapters implement.
//
// The package imports only the standard library. FHIR JSON, HTTP and SQL live
// in the sub-packages under adapter/, and the mapping between FHIR R4 and this
// domain lives in fhirmap/.
package linkbridge
