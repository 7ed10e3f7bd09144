package httpapi

// MarshalAll makes s marshal every resource it stores with jsonformat
// instead of storing received bytes, so tests can compare the two paths.
func MarshalAll(s *Server) { s.marshalAll = true }

// SetMaxAddrBuckets lowers the bound on unauthenticated source addresses'
// rate-limit buckets for a test; the returned func restores it.
func SetMaxAddrBuckets(n int) (restore func()) {
	old := maxAddrBuckets
	maxAddrBuckets = n
	return func() { maxAddrBuckets = old }
}

// HoldDecoder takes one of s's parse tokens (MaxDecoders), as a parse in
// progress would, until the returned func is called.
func HoldDecoder(s *Server) (release func()) {
	s.decodersOnce.Do(s.initDecoders)
	s.decoders <- struct{}{}
	return func() { <-s.decoders }
}
