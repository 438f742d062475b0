package registry

import "time"

// SetClock makes s issue and check tokens at the times now gives.
func SetClock(s *Server, now func() time.Time) { s.now = now }
