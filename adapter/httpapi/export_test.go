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
