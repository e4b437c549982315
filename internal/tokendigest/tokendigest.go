// Package tokendigest names a token for revocation: the SHA-256 digest
// that a token revocation (POST /admin/revoke with a token) records, that
// a verified token is checked against, and that its open streams are
// ended by. Every one of them must compute it here, the same way.
package tokendigest

import (
	"crypto/sha256"
	"strings"
)

// Revocation is the digest under which token is revoked. Of a token shaped
// as a JWS compact serialization (RFC 7515 §7.1: two dots), it is the
// digest of the signing input (§5.2 step 8: the header and payload parts
// as they came), without the signature. Of any other token, it is the
// digest of the whole token.
//
// The signature is left out because one signed content may carry more than
// one valid signature, and whoever holds the token can write the other: an
// ECDSA signature (r, s) has a twin (r, n-s) (ES256, ES384, ES512), which
// would otherwise let the holder of a revoked JWT present it again as
// another string. Every verification still checks the signature; this only
// names what a revocation applies to. An opaque token that happens to
// contain two dots is named without its last part, so a revocation of it
// also applies to tokens that differ from it only there: it fails closed.
func Revocation(token string) [32]byte {
	if strings.Count(token, ".") == 2 {
		token = token[:strings.LastIndexByte(token, '.')]
	}
	return sha256.Sum256([]byte(token))
}
