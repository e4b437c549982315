package sharedcache

import (
	"encoding/binary"
	"time"
)

// Stored value layout: one format byte, the storing machine's time in Unix
// nanoseconds (8 bytes, big-endian), then the caller's bytes. The time
// travels with the value because revocations are judged against it: a
// machine that reads a value from Redis must know when it was verified to
// tell whether a later revocation of its subject or client applies.
const (
	valueFormat = 1
	headerLen   = 9
)

// Hit is a value read from Redis.
type Hit struct {
	// Value is the caller's bytes, as given to Set or Lease.Fill.
	Value []byte
	// StoredAt is when the value was stored, by the storing machine's
	// Config.Now: the caller treats it as the verification time.
	StoredAt time.Time
}

func encodeValue(storedAt time.Time, v []byte) []byte {
	b := make([]byte, headerLen+len(v))
	b[0] = valueFormat
	binary.BigEndian.PutUint64(b[1:headerLen], uint64(storedAt.UnixNano()))
	copy(b[headerLen:], v)
	return b
}

// decodeValue parses a stored value. It refuses (ok false) anything not in
// our format or over max bytes: whoever else can write to this Redis must
// not be able to hand the verifier something it did not store.
func decodeValue(b []byte, max int) (Hit, bool) {
	if len(b) < headerLen || len(b) > headerLen+max || b[0] != valueFormat {
		return Hit{}, false
	}
	ns := int64(binary.BigEndian.Uint64(b[1:headerLen]))
	if ns <= 0 {
		return Hit{}, false
	}
	return Hit{Value: b[headerLen:], StoredAt: time.Unix(0, ns)}, true
}
