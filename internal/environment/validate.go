package environment

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/channel"
	"github.com/flyingcircusio/devhost/internal/names"
)

// placeholderName stands in for a dynamic name not assigned yet when
// checking lengths: devhost's names have at most 11 (MaxContainerName)
// characters.
const placeholderName = "xxxxxxxxxxx"

// realNames gives every host its real name as batou's Host.name does: the
// host's own name unless provision-dynamic-hostname is True, in which case
// the hostmap.json entry (none yet: the provisioner picks one on first up).
func (b *builder) realNames() {
	hm := b.env.HostMap
	for _, h := range b.env.Hosts {
		e := hm.entry(h.Name)
		if !h.Dynamic {
			h.RealName, h.RealNameRange = h.Name, h.NameRange
			if e != nil && e.Value != h.Name {
				b.warnf(e.ValueRange,
					fmt.Sprintf("Only hosts with provision-dynamic-hostname = True take their name from hostmap.json; batou replaces this entry with %q on its next run.", h.Name),
					"hostmap.json maps %q to %q, but that host's name is %q", h.Name, e.Value, h.Name)
			}
			continue
		}
		if e != nil {
			// batou takes an empty entry as the name itself; devhost would
			// take it for "not assigned yet" and show a name it never uses.
			if e.Value == "" {
				b.errorf(e.ValueRange,
					fmt.Sprintf("batou would use the empty string as the host's name; delete the entry of %q to get a new name on the next up.", h.Name),
					"hostmap.json gives host %q an empty name", h.Name)
			}
			h.RealName, h.RealNameRange = e.Value, e.ValueRange
			continue
		}
		if h.Provisioner == nil {
			b.errorf(h.DynamicSetting.Range,
				"batou asks the host's provisioner for a dynamic name; give the host a provisioner or remove provision-dynamic-hostname.",
				"host %q has a dynamic name but is not provisioned (%s)", h.Name, h.NotProvisioned)
		}
	}
}

func (b *builder) nameError(r hcl.Range, err error, context string) {
	var ne *names.Error
	if !errors.As(err, &ne) {
		b.errorf(r, context, "%v", err)
		return
	}
	detail := ne.Hint
	if context != "" {
		detail = context + " " + strings.ToUpper(detail[:1]) + detail[1:] + "."
	}
	b.errorf(r, detail, "%s", ne.Error())
}

// validate checks what devhost needs: provisioners, container names,
// aliases and service users of provisioned hosts.
func (b *builder) validate() {
	for _, p := range b.env.Provisioners {
		b.validateProvisioner(p)
	}
	seenUser := map[hcl.Pos]bool{}
	byReal := map[string]*Host{}
	for _, h := range b.env.Hosts {
		if h.RealName != "" {
			if first, dup := byReal[h.RealName]; dup {
				b.errorf(h.NameRange,
					fmt.Sprintf("The first is at %s. Every host needs its own name; rename or remove one of them.", posString(first.NameRange)),
					"duplicate host %q", h.RealName)
			} else {
				byReal[h.RealName] = h
			}
		}
		if !h.Provisioned() {
			continue
		}
		if err := names.Host(h.Name); err != nil {
			b.nameError(h.NameRange, err, fmt.Sprintf("devhost up writes the host's name into ssh_config_%s as a Host pattern, where ssh reads wildcards, negations, separators and quotes; rename the host.", b.env.Name))
		}
		if h.RealName != "" {
			ctx := "The host's name is the container's name because provision-dynamic-hostname is not True; rename the host or set provision-dynamic-hostname = True to let the devhost choose a name."
			if h.Dynamic {
				ctx = fmt.Sprintf("hostmap.json gives the container name of host %q; fix the entry or delete it to get a new name on the next up.", h.Name)
			}
			if err := names.Container(h.RealName); err != nil {
				b.nameError(h.RealNameRange, err, ctx)
			}
		}
		if su := h.ServiceUser; su.Set && !seenUser[su.Range.Start] {
			seenUser[su.Range.Start] = true
			if err := names.User(su.Value); err != nil {
				b.nameError(su.Range, err, "The service user is created in every container.")
			} else if su.Value == "developer" || su.Value == "root" {
				// The registry refuses these (every container defines them
				// itself), so devhost up would fail at ensure.
				b.errorf(su.Range, fmt.Sprintf("Every container already has the user %q; give the environment its own service user, e.g. service_user = s-%s.", su.Value, b.env.Name),
					"service user %q is reserved", su.Value)
			}
		}
		b.validateAliases(h)
	}
	if len(b.env.Provisioned()) > 0 {
		b.validateOverrides()
	}
}

// validateOverrides applies OverrideVariable to every [component:NAME]
// option, as devhost up does when it exports them to provision.sh. An
// option of [DEFAULT] appears in every such section; it is reported once.
func (b *builder) validateOverrides() {
	seen := map[hcl.Pos]bool{}
	for _, o := range b.env.Overrides {
		for _, opt := range o.Options {
			_, _, err := b.env.OverrideVariable(o, opt)
			if err == nil || seen[opt.NameRange().Start] {
				continue
			}
			seen[opt.NameRange().Start] = true
			r := opt.NameRange()
			summary := fmt.Sprintf("attribute %q of component %q cannot be passed to provision.sh", opt.Name(), o.Component)
			if errors.Is(err, ErrNULValue) {
				r = wholeValue(opt)
				summary = fmt.Sprintf("value of attribute %q of component %q contains a NUL byte", opt.Name(), o.Component)
			}
			b.errorf(r, "devhost up exports every attribute of [component:…] to provision.sh and refuses this one: "+err.Error()+".", "%s", summary)
		}
	}
}

func (b *builder) validateAliases(h *Host) {
	seen := map[string]Alias{}
	name := h.RealName
	if name == "" {
		name = placeholderName
	}
	devhost := h.Provisioner.Host.Value
	for _, a := range h.Aliases {
		if err := names.Alias(a.Name); err != nil {
			b.nameError(a.Range, err, fmt.Sprintf("Every alias becomes a DNS name <alias>.<container>.<devhost> (%s.%s.%s).", a.Name, name, devhost))
			continue
		}
		if first, dup := seen[a.Name]; dup {
			b.errorf(a.Range, fmt.Sprintf("The first is at %s; list every alias once.", posString(first.Range)),
				"duplicate alias %q of host %q", a.Name, h.Name)
			continue
		}
		seen[a.Name] = a
		if devhost != "" {
			if err := names.FQDN(a.Name, name, devhost); err != nil {
				b.nameError(a.Range, err, "The alias's public name is too long for DNS.")
			}
		}
	}
}

// validateProvisioner reports every mistake of a provisioner section at
// once: the method, the host and the channel are checked independently.
// Host and channel are required only of the methods devhost knows (and
// when the method is missing, as it is meant to be one of them); with
// another method their values are still checked when given.
func (b *builder) validateProvisioner(p *Provisioner) {
	known := strings.Join(quoteAll(KnownMethods()), ", ")
	required := true
	switch {
	case !p.Method.Set:
		b.errorf(p.Section.Range(), "Add method = "+MethodFCContainer+" (devhost knows "+known+").",
			"[provisioner:%s] has no method", p.Name)
	case p.Method.Value != MethodFCContainer && p.Method.Value != MethodDevhost:
		detail := "devhost provisions containers with the methods " + known + "."
		if p.Method.Value == "fc-nixos-dev-vm" {
			detail += " fc-nixos-dev-vm creates virtual machines on a VM devhost, which devhost does not manage."
		}
		b.errorf(p.Method.Range, detail, "unknown provisioner method %q", p.Method.Value)
		required = false
	}
	switch {
	case p.Host.Set:
		if err := names.Domain(p.Host.Value); err != nil {
			b.nameError(p.Host.Range, err, "host is the devhost's public address; containers are public below it.")
		}
	case required:
		b.errorf(p.Section.Range(), "Add host = <the devhost's public address>, e.g. host = dev.example.com.",
			"[provisioner:%s] has no host", p.Name)
	}
	switch {
	case p.Channel.Set:
		b.validateChannel(p)
	case required:
		b.errorf(p.Section.Range(), "Add channel = <URL of the NixOS channel for the containers>.",
			"[provisioner:%s] has no channel", p.Name)
	}
}

// validateChannel checks the channel against the one grammar the devhost
// uses. The grammar also keeps the channel one word for the shell that
// batou's own container provisioner (2.3 to 2.5) passes it through
// unquoted on the devhost (no ';', '&', blank or quote).
func (b *builder) validateChannel(p *Provisioner) {
	if _, err := channel.Parse(p.Channel.Value); err != nil {
		b.nameError(p.Channel.Range, err, "The devhost hands the channel to Nix as root, where '=', '?', '#' or '%' would make it mean a second place, so it may only hold URL characters with one meaning.")
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}
