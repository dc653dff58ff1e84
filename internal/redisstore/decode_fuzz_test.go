package redisstore

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// FuzzDecode feeds hostile values to the snapshot decoder: whoever can
// write to Redis chooses them. A value is accepted only when it is the
// snapshot of the provider asked for, within the size limit, with
// printable validators and sane times, and carries our MAC over exactly
// what it says; then changing any authenticated field without the key is
// refused. A refused value yields no snapshot and a reason.
func FuzzDecode(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := Open("redis://127.0.0.1:1", "ns", Options{HMACKeys: [][]byte{key}}) // never dialled
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	const maxJWKS = 4096
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	signed := func(w wire) []byte {
		w.MAC = s.sign(s.snapshotMACOf(&w))
		b, err := json.Marshal(w)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	good := wire{Version: snapshotVersion, TenantID: "acme", ProviderID: "main",
		JWKS: json.RawMessage(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"AAAA","y":"AAAA"}]}`),
		ETag: `"v1"`, LastModified: "Fri, 02 Jan 2026 03:04:05 GMT",
		ExpiresAt: t0.Add(time.Hour), PersistedAt: t0, Fingerprint: "fp"}
	f.Add(signed(good))
	for _, mutate := range []func(w *wire){
		func(w *wire) { w.TenantID = "globex" },
		func(w *wire) { w.ETag = "\"a\r\nX-Injected: 1\"" },
		func(w *wire) { w.ExpiresAt = w.PersistedAt.Add(-time.Second) },
		func(w *wire) { w.ExpiresAt = time.Time{} },
		func(w *wire) { w.JWKS = json.RawMessage(`[]`) },
		func(w *wire) {
			w.JWKS = json.RawMessage(`{"keys":"` + string(bytes.Repeat([]byte("a"), maxJWKS)) + `"}`)
		},
		func(w *wire) { w.Version = 2 },
		func(w *wire) { w.JWKSURI = "https://idp.test/keys" },
		func(w *wire) { w.JWKSURI = "https://idp.test/\r\nkeys" },
	} {
		w := good
		mutate(&w)
		f.Add(signed(w))
	}
	unsigned, _ := json.Marshal(good)
	f.Add(unsigned)
	f.Add([]byte(`{"version":1,"tenant_id":"acme","provider_id":"main"} {}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, raw []byte) {
		snap, reason, detail := s.decode(raw, "acme", "main", maxJWKS)
		if reason != "" {
			if detail == "" || snap.TenantID != "" || snap.JWKS != nil {
				t.Fatalf("refused (%s) with detail %q, yet a snapshot of %q", reason, detail, snap.TenantID)
			}
			return
		}
		if snap.TenantID != "acme" || snap.ProviderID != "main" || len(snap.JWKS) > maxJWKS ||
			!printable(snap.ETag, false) || !printable(snap.LastModified, true) ||
			snap.ExpiresAt.IsZero() || snap.PersistedAt.IsZero() || snap.ExpiresAt.Before(snap.PersistedAt) {
			t.Fatalf("accepted an invalid snapshot of %s/%s: %d-byte jwks, etag %q, last_modified %q, persisted %v, expires %v",
				snap.TenantID, snap.ProviderID, len(snap.JWKS), snap.ETag, snap.LastModified, snap.PersistedAt, snap.ExpiresAt)
		}
		var w wire
		if err := json.Unmarshal(raw, &w); err != nil {
			t.Fatalf("accepted a value that is not the JSON encoding: %v", err)
		}
		// Any authenticated field changed, the MAC kept: refused.
		for name, tamper := range map[string]func(w *wire){
			"jwks": func(w *wire) { // another object (json.Marshal compacts, so whitespace is no change)
				w.JWKS = json.RawMessage(`{"keys":[],"tampered":` + strconv.Itoa(len(w.JWKS)) + `}`)
			},
			"expires_at":   func(w *wire) { w.ExpiresAt = w.ExpiresAt.Add(time.Second) },
			"persisted_at": func(w *wire) { w.PersistedAt = w.PersistedAt.Add(-time.Second) },
			"etag":         func(w *wire) { w.ETag += "x" },
			"fingerprint":  func(w *wire) { w.Fingerprint += "x" },
			"jwks_uri":     func(w *wire) { w.JWKSURI += "x" },
		} {
			w2 := w
			tamper(&w2)
			b, err := json.Marshal(w2)
			if err != nil {
				t.Fatal(err)
			}
			if _, r, _ := s.decode(b, "acme", "main", maxJWKS); r == "" {
				t.Fatalf("accepted with %s changed and the old MAC", name)
			}
		}
	})
}
