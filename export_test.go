package bff

import "time"

// SetRevocationBounds sets how long a user's redirect waits for refresh
// token revocation, and how long a revocation may take, for tests that must
// tell the two apart without measuring time.
func SetRevocationBounds(b *BFF, wait, timeout time.Duration) {
	b.revokeWait, b.revokeTimeout = wait, timeout
}
