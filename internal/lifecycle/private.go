package lifecycle

import (
	"path/filepath"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
)

// The lifecycle's bookkeeping holds copies of private data: registry
// entries (applied.json, the intents' previous entries), the deployments'
// provision.nix (the intents, <StateDir>/provision) and the staged
// configurations importing it, and rebuild logs quoting command output. So
// <StateDir>/lifecycle, <StateDir>/provision and <StateDir>/log are root's
// alone (0700, tightened when an earlier version made them 0755), and the
// provision.nix copies and staged configurations are 0600. The generated
// set stays world-readable (nginx serves its status page); it holds
// nothing private (see templates.Status).
const (
	privateDirPerm  = 0o700
	privateFilePerm = 0o600
)

// writePrivate writes a private copy (provision.nix, a staged
// configuration) atomically, 0600, into a 0700 directory.
func writePrivate(path string, data []byte) error {
	if err := atomicfile.PrivateDir(filepath.Dir(path), privateDirPerm); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, privateFilePerm)
}
