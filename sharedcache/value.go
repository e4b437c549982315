package sharedcache

import (
	"crypto/hmac"
	"encoding/binary"
	"time"
)

// Stored value layout: one format byte, the storing machine's time in Unix
// nanoseconds (8 bytes, big-endian), a MAC (32 bytes), then the caller's
// bytes. The time travels with the value because revocations are judged
// against it: a machine that reads a value from Redis must know when it was
// verified to tell whether a later revocation of its subject or client
// applies.
//
// The MAC is HMAC-SHA256, under a key derived from KeySecret, of the ID the
// value is stored under, the format byte, the time and the caller's bytes.
// Whoever can write to this Redis without the secret (another application
// sharing it, an attacker who reached it) can therefore neither forge a
// value (say, claims granting every scope), nor move a value from one
// token's key to another's, nor make an old value look newly verified to
// escape a revocation: any of these is a miss.
const (
	valueFormat = 2
	timeLen     = 8
	macLen      = 32
	headerLen   = 1 + timeLen + macLen
)

// Hit is a value read from Redis.
type Hit struct {
	// Value is the caller's bytes, as given to Set or Lease.Fill.
	Value []byte
	// StoredAt is when the value was stored, by the storing machine's
	// Config.Now: the caller treats it as the verification time.
	StoredAt time.Time
}

// seal encodes a value stored under id.
func (k *keyer) seal(id *ID, storedAt time.Time, v []byte) []byte {
	b := make([]byte, headerLen+len(v))
	b[0] = valueFormat
	binary.BigEndian.PutUint64(b[1:1+timeLen], uint64(storedAt.UnixNano()))
	copy(b[headerLen:], v)
	k.mac(b[1+timeLen : headerLen][:0], id, b[:1+timeLen], v)
	return b
}

// open parses a value read from under id. It refuses (ok false) anything
// not in our format, over max bytes, or whose MAC does not verify: whoever
// else can write to this Redis must not be able to hand the verifier
// something it did not store.
func (k *keyer) open(id *ID, b []byte, max int) (Hit, bool) {
	if len(b) < headerLen || len(b) > headerLen+max || b[0] != valueFormat {
		return Hit{}, false
	}
	ns := int64(binary.BigEndian.Uint64(b[1 : 1+timeLen]))
	if ns <= 0 {
		return Hit{}, false
	}
	var want [macLen]byte
	k.mac(want[:0], id, b[:1+timeLen], b[headerLen:])
	if !hmac.Equal(want[:], b[1+timeLen:headerLen]) {
		return Hit{}, false
	}
	return Hit{Value: b[headerLen:], StoredAt: time.Unix(0, ns)}, true
}
