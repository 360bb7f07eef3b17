package environment

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

var variableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Why ComponentVariable refuses an attribute; match with errors.Is.
var (
	ErrVariableName = errors.New("not a valid shell variable name")
	ErrNULValue     = errors.New("value contains a NUL byte")
)

// ComponentVariable is the environment variable devhost up gives
// provision.sh for attribute attr of component comp (an override in
// environment.cfg or a secret): COMPONENT_<COMP>_<ATTR>, upper-cased as
// batou does. It fails (ErrVariableName) when that is no name a shell can
// read, e.g. for an attribute "foo-bar", and (ErrNULValue) when value holds
// a NUL byte, which no environment variable can. devhost check and devhost
// up both apply it, so check reports what up would refuse.
func ComponentVariable(comp, attr, value string) (string, error) {
	k := strings.ToUpper("COMPONENT_" + comp + "_" + attr)
	if !variableName.MatchString(k) {
		return "", fmt.Errorf("[component:%s] %s: %s is %w, so provision.sh cannot see it; rename the component or attribute", comp, attr, k, ErrVariableName)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return "", fmt.Errorf("[component:%s] %s: the %w, which an environment variable (%s for provision.sh) cannot hold; remove it", comp, attr, ErrNULValue, k)
	}
	return k, nil
}

// OverrideVariable is ComponentVariable for option opt of override o.
// An option o has from [DEFAULT] (batou adds those to every section) and
// whose name is no variable name is not exported (export false, no error):
// it was not written for the component, and no shell could read it. batou
// exports it anyway, under a name provision.sh cannot see.
func (e *Environment) OverrideVariable(o *Override, opt rawconfig.Option) (name string, export bool, err error) {
	name, err = ComponentVariable(o.Component, opt.Name(), opt.Value())
	if errors.Is(err, ErrVariableName) && e.fromDefaults(opt) {
		return "", false, nil
	}
	return name, err == nil, err
}

// fromDefaults reports whether opt is an option of the [DEFAULT] section.
func (e *Environment) fromDefaults(opt rawconfig.Option) bool {
	if e.File == nil {
		return false
	}
	d, ok := e.File.Defaults().Get(opt.Name())
	return ok && d == opt
}
