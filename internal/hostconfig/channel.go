package hostconfig

import "github.com/flyingcircusio/devhost/internal/channel"

// Policy is the rule channel.Policy applies to the containers' channels:
// the allowed prefixes (checked by Validate; one that does not parse is
// left out, allowing nothing).
func (p ChannelPolicy) Policy() channel.Policy {
	var pol channel.Policy
	for _, s := range p.AllowedPrefixes {
		if pr, err := channel.ParsePrefix(s); err == nil {
			pol.Prefixes = append(pol.Prefixes, pr)
		}
	}
	return pol
}
