package httpapi

// MarshalAll makes s marshal every resource it stores with jsonformat
// instead of storing received bytes, so tests can compare the two paths.
func MarshalAll(s *Server) { s.marshalAll = true }
