package lifecycle

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/inputfile"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/internal/runner"
)

// Let's Encrypt's limit of new certificates per registered domain and 7
// days, and the count from which devhost warns before a new container
// (http-01) would use one more.
const (
	CertLimit     = 50
	CertWarnAbove = 40
	certWindow    = 7 * 24 * time.Hour
	maxCertFile   = 1 << 20
)

// The states of a certificate.
const (
	CertValid   = "valid"   // issued, not expired
	CertExpired = "expired" // issued, expired
	CertPending = "pending" // not issued yet (absent, or NixOS' placeholder)
	CertFailed  = "failed"  // its acme-<cert> unit failed
)

// CertState is the state of the certificate serving a container.
type CertState struct {
	Name       string    `json:"name"` // security.acme.certs.<name>
	State      string    `json:"state"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// Reason says why a certificate failed (the unit's result) or is
	// pending.
	Reason string `json:"reason,omitempty"`
}

// certName is the certificate serving container c's names: with http-01
// its own (NixOS names it after the virtual host), with dns-01 the one the
// live set's plan gives its virtual host, else the main wildcard.
func (h *Host) certName(c *registry.Container) string {
	fqdn := c.Name + "." + h.Cfg.PublicAddress
	if !h.Cfg.ACME.DNS01() {
		return fqdn
	}
	if p, err := generator.ReadCertPlan(h.Cfg.GeneratedDir); err == nil && p != nil {
		if n, ok := p.VhostCert[fqdn]; ok {
			return n
		}
	}
	return h.Cfg.PublicAddress
}

// readCert reads <CertDir>/<name>/cert.pem: nil, no error, when absent.
func (h *Host) readCert(name string) (*x509.Certificate, error) {
	b, err := inputfile.Read(filepath.Join(h.Cfg.ACME.CertDir, name, "cert.pem"), maxCertFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", filepath.Join(h.Cfg.ACME.CertDir, name, "cert.pem"))
	}
	return x509.ParseCertificate(blk.Bytes)
}

// placeholder reports NixOS' self-signed stand-in, which its ACME module
// puts in place (issued by minica) until the real certificate arrives.
func placeholder(c *x509.Certificate) bool {
	return strings.HasPrefix(strings.ToLower(c.Issuer.CommonName), "minica")
}

// CertState reports the state of certificate name: its cert.pem's
// expiry, and the result of its unit acme-<name>.service (systemctl show).
func (h *Host) CertState(ctx context.Context, name string) CertState {
	s := CertState{Name: name, State: CertPending, Reason: "not issued yet"}
	cert, err := h.readCert(name)
	switch {
	case err != nil:
		s.Reason = err.Error()
	case cert != nil && placeholder(cert):
		s.Reason = "NixOS' self-signed placeholder is served until the certificate is issued"
	case cert != nil:
		s.ValidUntil = cert.NotAfter.UTC()
		s.State, s.Reason = CertValid, ""
		if h.now().After(cert.NotAfter) {
			s.State = CertExpired
		}
	}
	unit := "acme-" + name + ".service"
	argv := append(append([]string(nil), h.Cfg.Commands.Systemctl...), "show", "--property=Result", "--property=ActiveState", unit)
	res, err := h.Run.Run(ctx, runner.Cmd{Argv: argv})
	if err != nil {
		return s
	}
	props := map[string]string{}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			props[k] = v
		}
	}
	if props["ActiveState"] == "failed" || props["Result"] != "" && props["Result"] != "success" {
		s.State = CertFailed
		s.Reason = fmt.Sprintf("%s failed (result %s); see journalctl -u %s", unit, props["Result"], unit)
	}
	return s
}

// IssuedLastWeek counts the certificates in CertDir issued in the last 7
// days (their NotBefore), NixOS' placeholders left out. Renewals count too,
// though Let's Encrypt exempts them: the count errs on the safe side.
func (h *Host) IssuedLastWeek() (int, error) {
	ents, err := os.ReadDir(h.Cfg.ACME.CertDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count certificates: %w", err)
	}
	since := h.now().Add(-certWindow)
	n := 0
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		c, err := h.readCert(e.Name())
		if err != nil || c == nil || placeholder(c) {
			continue
		}
		if c.NotBefore.After(since) {
			n++
		}
	}
	return n, nil
}

// issuanceWarning is the warning for a new container under http-01 when
// it would take the week's certificates past CertWarnAbove ("" when not).
func (h *Host) issuanceWarning() string {
	if !h.Cfg.ACME.Enable || h.Cfg.ACME.Challenge != hostconfig.HTTP01 {
		return ""
	}
	n, err := h.IssuedLastWeek()
	if err != nil || n+1 <= CertWarnAbove {
		return ""
	}
	return fmt.Sprintf("this devhost got %d certificates in the last 7 days and this container needs one more; Let's Encrypt allows %d per week, "+
		"after which new containers wait for HTTPS. Ask the admin to switch to wildcard certificates "+
		"(flyingcircus.roles.devhost.acme.challenge = \"dns-01\").", n, CertLimit)
}
