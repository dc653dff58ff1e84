package redisstore

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// MinHMACKeyBytes is the shortest snapshot key accepted: HMAC-SHA-256's
// block of security (RFC 2104 §3 asks for at least the hash output length).
const MinHMACKeyBytes = 32

// ReadHMACKeys reads the snapshot keys of jwks.redis.hmac_key_file: one key
// per line, used as the line's bytes (surrounding spaces trimmed), each at
// least MinHMACKeyBytes long. Blank lines and lines starting with '#' are
// skipped. The first key signs, every key verifies, so keys rotate without
// a flag day: add the new key as the second line everywhere, then move it
// first, then drop the old one. Errors name the line, never its content.
func ReadHMACKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("redisstore: hmac keys: %w", err)
	}
	keys, err := ParseHMACKeys(b)
	if err != nil {
		return nil, fmt.Errorf("redisstore: hmac keys %s: %w", path, err)
	}
	return keys, nil
}

// ParseHMACKeys parses the content of a key file; see ReadHMACKeys.
func ParseHMACKeys(b []byte) ([][]byte, error) {
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if len(line) < MinHMACKeyBytes {
			return nil, fmt.Errorf("line %d: key of %d bytes, want at least %d", n, len(line), MinHMACKeyBytes)
		}
		keys = append(keys, bytes.Clone(line))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no key (want one key of at least %d bytes per line)", MinHMACKeyBytes)
	}
	return keys, nil
}

// checkHMACKeys applies ParseHMACKeys's rules to keys given in code.
func checkHMACKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return fmt.Errorf("redisstore: no snapshot HMAC key: snapshots would be trusted unauthenticated")
	}
	for i, k := range keys {
		if len(k) < MinHMACKeyBytes {
			return fmt.Errorf("redisstore: HMAC key %d: %d bytes, want at least %d", i, len(k), MinHMACKeyBytes)
		}
	}
	return nil
}

// snapshotMAC is HMAC-SHA-256 under key over everything a snapshot
// asserts: the namespace and the (tenant, provider) of the key it is
// stored under, the trust fingerprint of the provider settings it was
// fetched under, and every field of the snapshot. Each field is
// length-prefixed, so no two different snapshots share an input.
func snapshotMAC(key []byte, namespace string, w *wire) []byte {
	return fieldsMAC(key, func(field func([]byte)) {
		field([]byte("extauthz jwks snapshot v1"))
		field([]byte(namespace))
		field([]byte(w.TenantID))
		field([]byte(w.ProviderID))
		field([]byte(w.Fingerprint))
		field(w.JWKS)
		field([]byte(w.ETag))
		field([]byte(w.LastModified))
		field([]byte(w.ExpiresAt.UTC().Format(time.RFC3339Nano)))
		field([]byte(w.PersistedAt.UTC().Format(time.RFC3339Nano)))
		if w.JWKSURI != "" {
			// Last and only when set: the MAC of a snapshot without it,
			// as earlier releases wrote them, is unchanged.
			field([]byte("jwks_uri"))
			field([]byte(w.JWKSURI))
		}
	})
}

// fieldsMAC is HMAC-SHA-256 under key over the fields fields writes, each
// length-prefixed.
func fieldsMAC(key []byte, fields func(field func([]byte))) []byte {
	m := hmac.New(sha256.New, key)
	var n [8]byte
	fields(func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		m.Write(n[:])
		m.Write(b)
	})
	return m.Sum(nil)
}

// sign returns the MAC of a value with the first key, unpadded base64.
func (s *Store) sign(mac func(key []byte) []byte) string {
	return base64.RawStdEncoding.EncodeToString(mac(s.hmacKeys[0]))
}

// verify reports whether got (unpadded base64) is the MAC of a value under
// one of the keys.
func (s *Store) verify(got string, mac func(key []byte) []byte) bool {
	b, err := base64.RawStdEncoding.DecodeString(got)
	if err != nil || len(b) != sha256.Size {
		return false
	}
	for _, k := range s.hmacKeys {
		if hmac.Equal(b, mac(k)) {
			return true
		}
	}
	return false
}

// snapshotMACOf is snapshotMAC of w in the store's namespace, as sign and
// verify take it.
func (s *Store) snapshotMACOf(w *wire) func(key []byte) []byte {
	return func(key []byte) []byte { return snapshotMAC(key, s.namespace, w) }
}
