//go:build race

package fhirschema

const raceEnabled = true
