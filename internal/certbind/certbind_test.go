package certbind

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/keytest"
)

func testCert(t *testing.T) []byte {
	t.Helper()
	key := keytest.P256()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestThumbprint_RFC8705Encoding(t *testing.T) {
	// base64url of SHA-256("abc") without padding.
	if got, want := Thumbprint([]byte("abc")), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"; got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}
}

func TestFromEnvoy(t *testing.T) {
	der := testCert(t)
	p := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	got, err := FromEnvoy(url.QueryEscape(p))
	if err != nil || got != Thumbprint(der) {
		t.Fatalf("FromEnvoy = %s, %v; want %s", got, err, Thumbprint(der))
	}
	if _, err := FromEnvoy(""); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("empty: %v, want ErrNoCertificate", err)
	}
	for _, bad := range []string{"%zz", url.QueryEscape("not pem"), url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))} {
		if got, err := FromEnvoy(bad); err == nil {
			t.Errorf("FromEnvoy(%q) = %s, want an error", bad, got)
		}
	}
}

func TestFromXFCC_ClosestHop(t *testing.T) {
	der := testCert(t)
	sum := sha256.Sum256(der)
	h := hex.EncodeToString(sum[:])
	other := hex.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		name, header, want string
		err                error
	}{
		{"one element", `By=spiffe://acme/gw;Hash=` + h + `;Subject="CN=client"`, Thumbprint(der), nil},
		{"closest hop is the last", `Hash=` + other + `,By=x;Hash=` + h, Thumbprint(der), nil},
		{"quoted comma in Subject", `Hash=` + other + `,Subject="CN=a,O=b";Hash=` + h, Thumbprint(der), nil},
		{"last element without Hash", `Hash=` + h + `,By=x;Subject="CN=c"`, "", ErrNoCertificate},
		{"empty", ``, "", ErrNoCertificate},
		{"Hash not hex", `Hash=zz`, "", nil},
		{"Hash short", `Hash=abcd`, "", nil},
		{"two Hash", `Hash=` + h + `;Hash=` + other, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromXFCC(tc.header)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("FromXFCC = %s, %v; want %s", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("FromXFCC = %s, want an error", got)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
}
