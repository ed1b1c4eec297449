package controller

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/scrypt"

	"github.com/wgnet/wgnet/internal/store"
)

// Several controllers on one database serve one identity: the CA is kept in
// the store, its private key sealed (AES-256-GCM, the key derived from the CA
// secret with scrypt and a random salt) with a secret every controller is
// given (--ca-secret-file or WGNET_CA_SECRET). The database alone, or a dump
// of it, does not give the CA key.

// MinCASecret is the shortest CA secret accepted, in bytes.
const MinCASecret = 16

// sealMagic starts every sealed CA key (and names the format's version).
const sealMagic = "wgnet-ca-key-v1\n"

var errCASecret = errors.New("the CA secret does not open the CA key stored in the database: every controller of one database needs the same --ca-secret-file")

// CheckCASecret refuses a secret too short to protect the CA key.
func CheckCASecret(secret []byte) error {
	if len(bytes.TrimSpace(secret)) < MinCASecret {
		return fmt.Errorf("CA secret: %d bytes, want at least %d (e.g. `head -c 32 /dev/urandom | base64`)", len(bytes.TrimSpace(secret)), MinCASecret)
	}
	return nil
}

func sealKey(secret, keyPEM []byte) ([]byte, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	aead, err := caAEAD(secret, salt)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	head := append(append([]byte(sealMagic), salt...), nonce...)
	return aead.Seal(head, nonce, keyPEM, []byte(sealMagic)), nil
}

func openKey(secret, sealed []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(sealed, []byte(sealMagic))
	if !ok || len(rest) < 16+12 {
		return nil, errors.New("the stored CA key is not in a format this wgnet knows")
	}
	aead, err := caAEAD(secret, rest[:16])
	if err != nil {
		return nil, err
	}
	nonce := rest[16 : 16+aead.NonceSize()]
	keyPEM, err := aead.Open(nil, nonce, rest[16+aead.NonceSize():], []byte(sealMagic))
	if err != nil {
		return nil, errCASecret
	}
	return keyPEM, nil
}

func caAEAD(secret, salt []byte) (cipher.AEAD, error) {
	k, err := scrypt.Key(bytes.TrimSpace(secret), salt, 1<<15, 8, 1, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// LoadStoredTLS loads the CA kept in the store, sealed with secret; on the
// first start of the first controller it makes one and stores it (when
// several start at once, all use the one stored first). It then issues a
// serving certificate for names.
func LoadStoredTLS(ctx context.Context, st store.Store, secret []byte, names []string, now time.Time) (*TLS, error) {
	if err := CheckCASecret(secret); err != nil {
		return nil, err
	}
	stored, err := st.CA(ctx)
	if errors.Is(err, store.ErrNotFound) {
		_, _, certPEM, keyPEM, err := makeCA(now)
		if err != nil {
			return nil, err
		}
		sealed, err := sealKey(secret, keyPEM)
		if err != nil {
			return nil, err
		}
		stored, err = st.PutCA(ctx, store.StoredCA{CertPEM: certPEM, SealedKey: sealed})
		if err != nil {
			return nil, fmt.Errorf("store the CA: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read the CA from the store: %w", err)
	}
	keyPEM, err := openKey(secret, stored.SealedKey)
	if err != nil {
		return nil, err
	}
	ca, key, err := parseCA(stored.CertPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the CA in the store: %w", err)
	}
	return issue(ca, key, stored.CertPEM, names, now)
}

// StoreCAFrom seals the CA of a data directory (ca.crt, ca.key) with secret
// and stores it, for `controller migrate`: the controllers on the new store
// keep the identity agents and join tokens pin. It refuses a store that
// holds another CA already.
func StoreCAFrom(ctx context.Context, st store.Store, dir string, secret []byte) error {
	if err := CheckCASecret(secret); err != nil {
		return err
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return err
	}
	if _, _, err := parseCA(certPEM, keyPEM); err != nil {
		return fmt.Errorf("CA in %s: %w", dir, err)
	}
	sealed, err := sealKey(secret, keyPEM)
	if err != nil {
		return err
	}
	got, err := st.PutCA(ctx, store.StoredCA{CertPEM: certPEM, SealedKey: sealed})
	if err != nil {
		return err
	}
	if !bytes.Equal(got.CertPEM, certPEM) {
		return errors.New("the target store holds another CA already")
	}
	return nil
}
