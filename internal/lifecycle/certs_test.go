package lifecycle

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
)

// writeCert puts a certificate for cert into <CertDir>/<cert>/cert.pem,
// issued by issuer, valid from notBefore for 90 days.
func writeCert(t *testing.T, h *Host, cert, issuer string, notBefore time.Time) time.Time {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: issuer},
		NotBefore: notBefore, NotAfter: notBefore.Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	dir := filepath.Join(h.Cfg.ACME.CertDir, cert)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	return tmpl.NotAfter.UTC().Truncate(time.Second)
}

// TestCertificateStateInStatus: valid until its NotAfter, pending while
// absent or NixOS' placeholder, failed with the unit's result, read through
// the systemctl command of the configuration.
func TestCertificateStateInStatus(t *testing.T) {
	h, fr := testHost(t)
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	h.Now = func() time.Time { return now }
	ctx := context.Background()
	for _, n := range []string{"shop", "blog", "wiki"} {
		_, err := h.Ensure(ctx, EnsureRequest{Name: n, Channel: "https://example.org/c.tar.xz", Caller: alice})
		require.NoError(t, err)
	}
	until := writeCert(t, h, "shop.dev.example.com", "R3", now.Add(-24*time.Hour))
	writeCert(t, h, "blog.dev.example.com", "minica root ca 0a1b2c", now.Add(-time.Hour))
	fr.stdout = map[string]string{"show --property=Result --property=ActiveState acme-wiki.dev.example.com.service": "Result=exit-code\nActiveState=failed\n"}

	s, err := h.Status(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, &CertState{Name: "shop.dev.example.com", State: CertValid, ValidUntil: until}, s.Cert)
	assert.Contains(t, callsOf(fr, "systemctl"), []string{"systemctl", "show", "--property=Result", "--property=ActiveState", "acme-shop.dev.example.com.service"})

	s, err = h.Status(ctx, "blog")
	require.NoError(t, err)
	assert.Equal(t, CertPending, s.Cert.State)
	assert.Contains(t, s.Cert.Reason, "placeholder")

	s, err = h.Status(ctx, "wiki")
	require.NoError(t, err)
	assert.Equal(t, CertFailed, s.Cert.State)
	assert.Contains(t, s.Cert.Reason, "acme-wiki.dev.example.com.service failed (result exit-code)")

	h.Now = func() time.Time { return until.Add(time.Hour) }
	s, err = h.Status(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, CertExpired, s.Cert.State)

	h.Cfg.ACME.Enable = false
	s, err = h.Status(ctx, "shop")
	require.NoError(t, err)
	assert.Nil(t, s.Cert)
}

// TestDNS01StatusNamesTheShard: with dns-01 a container with nested
// aliases is served by its shard's certificate, one without by the main
// wildcard.
func TestDNS01StatusNamesTheShard(t *testing.T) {
	h, _ := testHost(t)
	h.Cfg.ACME.Challenge, h.Cfg.ACME.DNSProvider = hostconfig.DNS01, "rfc2136"
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Aliases: []string{"www"}, Caller: alice})
	require.NoError(t, err)
	_, err = h.Ensure(ctx, EnsureRequest{Name: "blog", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	s, err := h.Status(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, generator.ShardCertName("dev.example.com", generator.ShardSlot("shop", h.Cfg.ACME.Shards), 0), s.Cert.Name)
	assert.Equal(t, CertPending, s.Cert.State)
	s, err = h.Status(ctx, "blog")
	require.NoError(t, err)
	assert.Equal(t, "dev.example.com", s.Cert.Name)
}

// TestIssuanceWarning: under http-01 a new container that would take the
// week's certificates past 40 gets a warning naming dns-01; older
// certificates, placeholders and dns-01 hosts do not count or warn.
func TestIssuanceWarning(t *testing.T) {
	h, _ := testHost(t)
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	h.Now = func() time.Time { return now }
	ctx := context.Background()
	for i := range 39 {
		writeCert(t, h, fmt.Sprintf("c%d.dev.example.com", i), "R3", now.Add(-time.Duration(i)*time.Hour))
	}
	writeCert(t, h, "old.dev.example.com", "R3", now.Add(-8*24*time.Hour))
	writeCert(t, h, "new.dev.example.com", "minica root ca 1", now)
	n, err := h.IssuedLastWeek()
	require.NoError(t, err)
	assert.Equal(t, 39, n)
	hs, err := h.HostStatus()
	require.NoError(t, err)
	assert.Equal(t, 39, hs.CertsLastWeek)
	assert.Equal(t, "http-01", hs.Challenge)

	res, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	assert.Empty(t, res.Warnings, "the 40th is still fine")

	writeCert(t, h, "c39.dev.example.com", "R3", now)
	res, err = h.Ensure(ctx, EnsureRequest{Name: "blog", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "40 certificates in the last 7 days")
	assert.Contains(t, res.Warnings[0], `acme.challenge = "dns-01"`)

	res, err = h.Ensure(ctx, EnsureRequest{Name: "blog", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	assert.Empty(t, res.Warnings, "only a new container needs a certificate")

	h.Cfg.ACME.Challenge, h.Cfg.ACME.DNSProvider = hostconfig.DNS01, "rfc2136"
	res, err = h.Ensure(ctx, EnsureRequest{Name: "wiki", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	assert.Empty(t, res.Warnings)
}
