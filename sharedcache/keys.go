package sharedcache

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"sync"
)

// ID is the keyed identity of a token: HMAC-SHA256(KeySecret, SHA-256 of
// the token). It names the token's key, lock and notifications in Redis,
// and a token revocation (Revocation.Value is its hex form). Without the
// secret it cannot be computed from a token or its digest, so neither a
// Redis dump nor the revocation channel can be matched against tokens or
// token digests seen elsewhere.
type ID [32]byte

// String is the lowercase hex form, as used in keys and revocations.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// hkdfInfo separates this use of a shared secret from every other: the key
// that names cache entries is never the introspection client secret itself.
const hkdfInfo = "mcp-gateway sharedcache key v1"

// DeriveKeySecret turns a configured secret (CACHE_KEY_SECRET, or by
// default INTROSPECTION_CLIENT_SECRET, which every machine already shares)
// into Config.KeySecret with HKDF-SHA256 (RFC 5869). Deriving rather than
// using the secret directly means a leaked cache key secret does not leak
// the client secret. secret must be at least 16 bytes.
func DeriveKeySecret(secret string) ([]byte, error) {
	if len(secret) < minKeySecret {
		return nil, errors.New("sharedcache: key secret must be at least 16 bytes")
	}
	return hkdf.Key(sha256.New, []byte(secret), nil, hkdfInfo, 32)
}

// macInfo separates the key that authenticates stored values from the
// key that names them.
const macInfo = "mcp-gateway sharedcache value mac v1"

// keyer computes IDs, key names and value MACs. HMAC states are pooled:
// building one costs two SHA-256 blocks and an allocation, on every call
// otherwise.
type keyer struct {
	prefix  string
	pool    sync.Pool // of hash.Hash (HMAC-SHA256 keyed with the secret)
	macPool sync.Pool // of hash.Hash (HMAC-SHA256 keyed with the MAC key)
}

func newKeyer(secret []byte, prefix string) *keyer {
	k := &keyer{prefix: prefix}
	k.pool.New = func() any { return hmac.New(sha256.New, secret) }
	// The MAC key is HMAC(secret, macInfo): a PRF output independent of
	// the ID key, so a value's MAC says nothing about any ID and back.
	kh := hmac.New(sha256.New, secret)
	kh.Write([]byte(macInfo))
	macKey := kh.Sum(nil)
	k.macPool.New = func() any { return hmac.New(sha256.New, macKey) }
	return k
}

// mac appends HMAC(macKey, id || header || v) to dst.
func (k *keyer) mac(dst []byte, id *ID, header, v []byte) []byte {
	h := k.macPool.Get().(hash.Hash)
	h.Reset()
	h.Write(id[:])
	h.Write(header)
	h.Write(v)
	dst = h.Sum(dst)
	k.macPool.Put(h)
	return dst
}

// IDs computes IDs (and nothing else) without a Store: a gateway without
// Redis still names token revocations by ID, so that its admin API, its
// verifier and a later Store agree. It is safe for concurrent use.
type IDs struct{ k *keyer }

// TokenIDs computes the keyed identity of a token digest: what the
// verifier stores beside a cached answer and token revocations name.
// *Store and *IDs implement it.
type TokenIDs interface {
	ID(digest [32]byte) ID
}

// NewIDs returns an IDs for secret (Config.KeySecret; at least 16 bytes).
func NewIDs(secret []byte) (*IDs, error) {
	if len(secret) < minKeySecret {
		return nil, &InvalidError{Reason: "key secret must be at least 16 bytes"}
	}
	return &IDs{k: newKeyer(append([]byte(nil), secret...), "")}, nil
}

// ID is the keyed identity of a token digest, as Store.ID computes it
// with the same secret.
func (i *IDs) ID(digest [32]byte) ID { return i.k.id(&digest) }

func (k *keyer) id(digest *[32]byte) ID {
	h := k.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(digest[:])
	var id ID
	h.Sum(id[:0])
	k.pool.Put(h)
	return id
}

// Key layout under the prefix. Each is documented with why it exists.
const (
	// "c:<id>": a value (the verified claims), TTL set by the caller.
	kindValue = "c:"
	// "l:<id>": the coalescing lock, holding its owner's random token.
	kindLock = "l:"
	// "revocations": a sorted set of revocation records scored by their
	// expiry in Unix milliseconds, so expired ones are pruned by score and
	// the live ones read in one range query.
	keyRevocations = "revocations"
	// "revoke": the channel every revocation record is published on.
	chanRevoke = "revoke"
	// "filled": the channel a lock holder announces on (a value landed, or
	// the lock was released without one), waking Await on every machine.
	chanFilled = "filled"
)

func (k *keyer) value(id *ID) string { return k.prefix + kindValue + id.String() }
func (k *keyer) lock(id *ID) string  { return k.prefix + kindLock + id.String() }
func (k *keyer) revocations() string { return k.prefix + keyRevocations }
func (k *keyer) revokeChan() string  { return k.prefix + chanRevoke }
func (k *keyer) filledChan() string  { return k.prefix + chanFilled }
