// Package bodyzip compresses the FHIR JSON bodies the stores keep.
//
// Encode turns a body into a zstd frame compressed against a built-in raw
// dictionary: compact FHIR JSON of the kinds the gateway writes (Task,
// ServiceRequest, Patient, CarePlan, Goal, Encounter, Observation,
// Procedure), taken from the repository's own fixtures and golden files. A
// body of a kilobyte or two shares most of its keys, code systems and
// extension URLs with the dictionary, so it compresses far better than it
// would alone.
//
// Decode reverses Encode, and also accepts a plain JSON body (one starting
// with '{' or JSON whitespace), returned as it is: rows written before the
// stores compressed bodies read unchanged, so no migration is needed, and a
// store may hold both kinds.
//
// # Dictionaries are frozen
//
// A zstd frame names its dictionary by an ID in its header, and a stored
// body can only be decoded with the exact bytes it was compressed against.
// So a dictionary, once shipped, never changes for its ID: to use better
// content, add a new file with the next ID (2, then 3...), make Encode use
// it, and keep every earlier dictionary in Decode for as long as any store
// may hold a body that names it. TestDictionaryFrozen pins the SHA-256 of
// each shipped dictionary.
//
// Dictionary 1 is dictionary-1.ndjson, one resource a line, least useful
// first: a raw dictionary is history the frame's matches reach back into,
// and the nearest history is the cheapest to reach. TestDictionaryBuild
// rebuilds it from the fixtures it was made from (go test
// ./adapter/internal/bodyzip -run TestDictionaryBuild -v); see
// dictionary_test.go.
package bodyzip

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// currentDict is the ID of the dictionary Encode compresses against.
const currentDict = 1

// dictionary1 is dictionary 1's content. Never edit it: see the package
// documentation.
//
//go:embed dictionary-1.ndjson
var dictionary1 []byte

// maxDecoded bounds the memory one Decode may use: far above any body the
// gateway stores (FHIR resources of a few kilobytes, free text capped at
// 10,000 characters a field), so a corrupt or hostile frame cannot claim
// gigabytes.
const maxDecoded = 64 << 20

// encoderWindow is the encoder's window: room for the dictionary and a
// body well past the usual few kilobytes. A longer body compresses as well
// as a window allows.
const encoderWindow = 256 << 10

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

var (
	codecOnce sync.Once
	encoder   *zstd.Encoder
	decoder   *zstd.Decoder
	codecErr  error
)

// codec returns the shared encoder and decoder, built on first use. Their
// EncodeAll and DecodeAll may be called from several goroutines at once.
func codec() (*zstd.Encoder, *zstd.Decoder, error) {
	codecOnce.Do(func() {
		encoder, codecErr = zstd.NewWriter(nil,
			zstd.WithEncoderDictRaw(currentDict, dictionary1),
			// The fastest level: on a sample of bodies it compressed 4.5
			// to 1 where SpeedBetterCompression did 4.9, at a sixth of
			// its time and a tenth of its memory (0.8 MB an encoder,
			// with the two options after it).
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithLowerEncoderMem(true),
			zstd.WithWindowSize(encoderWindow),
			zstd.WithEncoderConcurrency(min(runtime.GOMAXPROCS(0), 4)),
			// A checksum turns a wrong dictionary or a damaged row into
			// an error rather than wrong JSON, for 4 bytes a body.
			zstd.WithEncoderCRC(true))
		if codecErr != nil {
			codecErr = fmt.Errorf("bodyzip: encoder: %w", codecErr)
			return
		}
		decoder, codecErr = zstd.NewReader(nil,
			zstd.WithDecoderDictRaw(1, dictionary1),
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(maxDecoded))
		if codecErr != nil {
			codecErr = fmt.Errorf("bodyzip: decoder: %w", codecErr)
		}
	})
	return encoder, decoder, codecErr
}

// Encode returns body as it should be stored: a zstd frame compressed
// against the current dictionary, or body itself when it is plain JSON
// (Decode passes it through) and the frame would not be shorter, as for
// "{}". An empty body stays empty.
func Encode(body []byte) []byte {
	if len(body) == 0 {
		return body
	}
	enc, _, err := codec()
	if err != nil {
		// The options are constants: an error is a programming error
		// that the package's tests catch.
		panic(err)
	}
	out := enc.EncodeAll(body, make([]byte, 0, len(body)/2+32))
	if len(out) >= len(body) && plain(body) {
		return body
	}
	return out
}

// Decode returns the body that Encode was given for stored: stored itself
// when it is empty or plain JSON, the decompressed JSON when it is a zstd
// frame (compressed against a dictionary this build knows, or none). It
// returns an error for anything else, for a frame naming a dictionary this
// build does not know, and for a damaged frame.
func Decode(stored []byte) ([]byte, error) {
	if len(stored) == 0 || plain(stored) {
		return stored, nil
	}
	if !bytes.HasPrefix(stored, zstdMagic) {
		return nil, fmt.Errorf("bodyzip: stored body is neither JSON nor a zstd frame (starts %#x)", stored[:min(len(stored), 4)])
	}
	var h zstd.Header
	if err := h.Decode(stored); err != nil {
		return nil, fmt.Errorf("bodyzip: stored body: %w", err)
	}
	// 0 is a frame without a dictionary, which needs none.
	if h.DictionaryID != 0 && h.DictionaryID != 1 {
		return nil, fmt.Errorf("bodyzip: stored body was compressed with dictionary %d, which this build does not know (it knows 1)", h.DictionaryID)
	}
	_, dec, err := codec()
	if err != nil {
		return nil, err
	}
	out, err := dec.DecodeAll(stored, nil)
	if err != nil {
		if errors.Is(err, zstd.ErrUnknownDictionary) {
			return nil, fmt.Errorf("bodyzip: stored body names a dictionary this build does not know: %w", err)
		}
		return nil, fmt.Errorf("bodyzip: stored body: %w", err)
	}
	return out, nil
}

// plain tells whether b starts as a JSON object does, possibly after JSON
// whitespace: a body stored as it is.
func plain(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}
