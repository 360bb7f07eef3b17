package lifecycle

import (
	"errors"
	"fmt"
	"strings"

	"github.com/flyingcircusio/devhost/internal/diag"
)

// checkQuota refuses a new container for a caller who already owns
// access.max_containers_per_user of them (admins are exempt). Call it
// under the registry lock, before the new entry is written: concurrent
// ensures of one user are serialised by the lock, so together they never
// exceed the limit.
func (h *Host) checkQuota(c Caller) error {
	limit := h.Cfg.Access.MaxContainersPerUser
	if limit <= 0 || c.Admin(h.Cfg.Access) {
		return nil
	}
	all, err := h.Reg.LoadAll()
	var de *diag.Error
	if err != nil && !errors.As(err, &de) {
		return err
	}
	// A broken entry is not counted: its owner cannot be read.
	var own []string
	for _, x := range all {
		if x.Owner == c.User {
			own = append(own, x.Name)
		}
	}
	if len(own) < limit {
		return nil
	}
	return &DeniedError{User: c.User, What: "create another container",
		Why: fmt.Sprintf("this devhost allows %d containers per user (access.max_containers_per_user) and %q has %d: %s; destroy one with `devhost destroy NAME` first",
			limit, c.User, len(own), strings.Join(own, ", "))}
}
