package environment

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

// view is a section as batou's Config[section] sees it: the section's own
// options first, then the [DEFAULT] options it does not override (the order
// of RawConfigParser.options()).
type view struct {
	sec  rawconfig.Section
	opts []rawconfig.Option
}

// A missing section is empty: batou's config.get(section, {}) does not
// fall back to [DEFAULT] then.
func newView(s rawconfig.Section) view {
	if s.IsZero() {
		return view{}
	}
	return view{sec: s, opts: s.Merged()}
}

func (v view) get(name string) (rawconfig.Option, bool) {
	for _, o := range v.opts {
		if o.Name() == name {
			return o, true
		}
	}
	return rawconfig.Option{}, false
}

// setting returns the option name as a Setting (not Set when absent).
func (v view) setting(name string) Setting {
	o, ok := v.get(name)
	if !ok {
		return Setting{}
	}
	return settingOf(o)
}

// section returns the section called name, or the zero Section.
func section(f *rawconfig.File, name string) rawconfig.Section {
	s, _ := f.Section(name)
	return s
}

func settingOf(o rawconfig.Option) Setting {
	return Setting{Value: o.Value(), Set: true, Range: wholeValue(o), NameRange: o.NameRange()}
}

// builder collects the model and its diagnostics.
type builder struct {
	f     *rawconfig.File
	env   *Environment
	diags hcl.Diagnostics
}

func (b *builder) errorf(r hcl.Range, detail, format string, args ...any) {
	rr := r
	b.diags = append(b.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
		Summary: fmt.Sprintf(format, args...), Detail: detail, Subject: &rr})
}

func (b *builder) warnf(r hcl.Range, detail, format string, args ...any) {
	rr := r
	b.diags = append(b.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning,
		Summary: fmt.Sprintf(format, args...), Detail: detail, Subject: &rr})
}

// Build makes the model of environment name from its parsed environment.cfg
// and its hostmap (nil: no hostmap.json), and validates it. It reads no
// files; Load does. The returned diagnostics are every problem found.
func Build(name string, f *rawconfig.File, hm *HostMap) (*Environment, hcl.Diagnostics) {
	if hm == nil {
		hm = &HostMap{}
	}
	b := &builder{f: f, env: &Environment{Name: name, File: f, ConfigFile: f.Filename, HostMap: hm}}
	b.environment()
	b.provisioners()
	b.hosts()
	b.resolver()
	b.sections()
	b.realNames()
	b.validate()
	return b.env, b.diags
}

// environment reads [environment] like Environment.load_environment.
func (b *builder) environment() {
	v := newView(section(b.f, "environment"))
	s := &b.env.Settings
	known := map[string]*Setting{
		"service_user": &s.ServiceUser, "require_sudo": &s.RequireSudo,
		"host_domain": &s.HostDomain, "target_directory": &s.TargetDirectory,
		"connect_method": &s.ConnectMethod, "update_method": &s.UpdateMethod,
		"branch": &s.Branch, "platform": &s.Platform, "timeout": &s.Timeout,
		"repository_url": &s.RepositoryURL, "repository_root": &s.RepositoryRoot,
		"jobs": &s.Jobs, "require_v4": &s.RequireV4, "require_v6": &s.RequireV6,
	}
	for _, o := range v.opts {
		if p, ok := known[o.Name()]; ok {
			*p = settingOf(o)
		} else {
			s.Other = append(s.Other, o)
		}
	}
	def := func(p *Setting, val string) {
		if !p.Set {
			p.Value = val
		}
	}
	def(&s.UpdateMethod, "rsync")
	def(&s.ConnectMethod, "ssh")
	def(&s.TargetDirectory, "~/deployment")
	if !s.Platform.Set && s.HostDomain.Value != "" {
		s.Platform.Value = s.HostDomain.Value
	}
	def(&s.RequireV4, "True")
	def(&s.RequireV6, "False")
	def(&s.Timeout, "3")
	s.TimeoutSeconds = 3
	if s.Timeout.Set {
		if n, ok := pyInt(s.Timeout.Value); ok {
			s.TimeoutSeconds = n
		} else {
			b.warnf(s.Timeout.Range, "batou reads timeout with int(); write a whole number of seconds, e.g. timeout = 30.",
				"timeout %q is not a whole number; batou will refuse to deploy", s.Timeout.Value)
		}
	}
	if s.Jobs.Set {
		if _, ok := pyInt(s.Jobs.Value); !ok {
			b.warnf(s.Jobs.Range, "batou reads jobs with int(); write a number, e.g. jobs = 4.",
				"jobs %q is not a whole number; batou will refuse to deploy", s.Jobs.Value)
		}
	}
	for _, p := range []*Setting{&s.RequireV4, &s.RequireV6} {
		if p.Set && p.Value != "optional" {
			if _, ok := pyBool(p.Value); !ok {
				b.warnf(p.Range, "batou accepts True, False or optional here.",
					"%q is not True, False or optional; batou will refuse to deploy", p.Value)
			}
		}
	}
}

// provisioners reads the [provisioner:NAME] sections, all of them (batou
// instantiates every one, used or not, so an unknown method is an error even
// for an unused section).
func (b *builder) provisioners() {
	for sec := range b.f.Sections() {
		name, ok := strings.CutPrefix(sec.Name(), "provisioner:")
		if !ok {
			continue
		}
		v := newView(sec)
		p := &Provisioner{Name: name, NameRange: sectionSubName(sec, "provisioner:"), Section: sec,
			Method: v.setting("method"), Host: v.setting("host"), Channel: v.setting("channel")}
		for _, o := range v.opts {
			switch o.Name() {
			case "method", "host", "channel":
			default:
				p.Other = append(p.Other, o)
			}
		}
		b.env.Provisioners = append(b.env.Provisioners, p)
	}
}

func (b *builder) provisioner(name string) *Provisioner {
	for _, p := range b.env.Provisioners {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// hosts reads [hosts] and then every [host:NAME], in batou's order.
func (b *builder) hosts() {
	if sec, ok := b.f.Section("hosts"); ok {
		for _, o := range newView(sec).opts {
			h := &Host{Name: strings.TrimLeft(o.Name(), "!"), NameRange: o.NameRange(),
				Ignore: strings.HasPrefix(o.Name(), "!")}
			b.hostCommon(h, view{})
			h.Components = b.components(o)
			b.env.Hosts = append(b.env.Hosts, h)
		}
	}
	for sec := range b.f.Sections() {
		name, ok := strings.CutPrefix(sec.Name(), "host:")
		if !ok {
			continue
		}
		v := newView(sec)
		h := &Host{Name: name, NameRange: sectionSubName(sec, "host:"), Section: sec}
		if o, ok := v.get("ignore"); ok {
			val, ok := pyBool(o.Value())
			if !ok {
				b.errorf(wholeValue(o), "Write ignore = True or ignore = False (batou reads it as a Python literal).",
					"ignore must be True or False, not %q", o.Value())
			}
			h.Ignore = val
		}
		b.hostCommon(h, v)
		if o, ok := v.get("components"); ok {
			h.Components = b.components(o)
		} else {
			b.warnf(sec.Range(), "batou requires a components option in every [host:NAME] section, e.g. components = nginx, app.",
				"host %q has no components option; batou will refuse to deploy", name)
		}
		b.env.Hosts = append(b.env.Hosts, h)
	}
}

// hostCommon reads what Host.__init__ reads from a host's config (v is
// empty for a [hosts] entry, whose only config is "ignore").
func (b *builder) hostCommon(h *Host, v view) {
	s := b.env.Settings
	h.Platform = inherit(v.setting("platform"), s.Platform)
	h.ServiceUser = inherit(v.setting("service_user"), s.ServiceUser)
	h.RequireSudo = inherit(v.setting("require_sudo"), s.RequireSudo)
	if _, ok := v.get("require_sudo"); h.RequireSudo.Set && ok {
		if _, ok := pyBool(h.RequireSudo.Value); !ok {
			b.warnf(h.RequireSudo.Range, "Write require_sudo = True or False.",
				"require_sudo %q is not True or False; batou will refuse to deploy", h.RequireSudo.Value)
		}
	}
	h.DynamicSetting = v.setting("provision-dynamic-hostname")
	if h.DynamicSetting.Set {
		val, ok := pyBool(h.DynamicSetting.Value)
		if !ok {
			b.errorf(h.DynamicSetting.Range,
				"batou reads this option as a Python literal: write provision-dynamic-hostname = True to let the devhost choose the container's name, or False to use the host's name.",
				"provision-dynamic-hostname must be True or False, not %q", h.DynamicSetting.Value)
		}
		h.Dynamic = val
	}

	h.ProvisionerRef = v.setting("provisioner")
	switch ref := h.ProvisionerRef.Value; ref {
	case "none":
		h.NotProvisioned = "provisioner = none"
	case "":
		h.Provisioner = b.provisioner("default")
		if h.Provisioner == nil {
			h.NotProvisioned = "no [provisioner:default] section"
		}
	default:
		h.Provisioner = b.provisioner(ref)
		if h.Provisioner == nil {
			h.NotProvisioned = fmt.Sprintf("[provisioner:%s] is missing", ref)
			b.errorf(h.ProvisionerRef.Range, b.provisionerHint(ref),
				"host %q uses provisioner %q, but there is no [provisioner:%s] section", h.Name, ref, ref)
		}
	}

	// Aliases only matter to a provisioner (FCDevProvisioner.configure_host).
	if o, ok := v.get("provision-aliases"); ok {
		switch {
		case h.Provisioner != nil:
			vl := newValueLines(o)
			for _, sp := range pyFields(o.Value()) {
				h.Aliases = append(h.Aliases, Alias{Name: o.Value()[sp.a:sp.b], Range: vl.rng(sp)})
			}
		case h.ProvisionerRef.Value == "" || h.ProvisionerRef.Value == "none":
			b.warnf(o.NameRange(), "Aliases are public names of a provisioned container; remove them or give the host a provisioner.",
				"provision-aliases of host %q have no effect: it is not provisioned (%s)", h.Name, h.NotProvisioned)
		}
	}
	if h.Provisioner != nil {
		b.limits(h, v)
	}
	for _, o := range v.opts {
		if name, ok := strings.CutPrefix(o.Name(), "data-"); ok {
			h.Data = append(h.Data, Data{Name: name, Value: settingOf(o)})
		}
	}
}

// limits reads a provisioned host's provision-memory, provision-cpu-weight,
// provision-cpu-quota, provision-tasks-max and provision-expire-after: its
// own, else those of its [provisioner:NAME] section.
func (b *builder) limits(h *Host, v view) {
	pv := newView(h.Provisioner.Section)
	get := func(key string) Setting { return inherit(v.setting(key), pv.setting(key)) }
	check := func(key string, st Setting, err error) bool {
		if err != nil {
			b.errorf(st.Range, "devhost passes it to `devhost ensure` as a systemd setting of the container; leave the option out for the devhost's default.",
				"%s of host %q: %v", key, h.Name, err)
			return false
		}
		return true
	}
	if st := get("provision-memory"); st.Set {
		if check("provision-memory", st, limits.CheckMemory(st.Value)) {
			h.Limits.MemoryMax = st.Value
		}
	}
	if st := get("provision-cpu-quota"); st.Set {
		if check("provision-cpu-quota", st, limits.CheckCPUQuota(st.Value)) {
			h.Limits.CPUQuota = st.Value
		}
	}
	for _, n := range []struct {
		key   string
		dst   *int
		check func(int) error
	}{{"provision-cpu-weight", &h.Limits.CPUWeight, limits.CheckCPUWeight}, {"provision-tasks-max", &h.Limits.TasksMax, limits.CheckTasks}} {
		st := get(n.key)
		if !st.Set {
			continue
		}
		i, err := limits.ParseInt(st.Value)
		if err == nil {
			err = n.check(i)
		}
		if check(n.key, st, err) {
			*n.dst = i
		}
	}
	if st := get("provision-expire-after"); st.Set {
		d, err := limits.ParseLifetime(st.Value)
		if check("provision-expire-after", st, err) {
			h.ExpireAfter = d
		}
	}
}

func (b *builder) provisionerHint(ref string) string {
	var have []string
	for _, p := range b.env.Provisioners {
		have = append(have, p.Name)
	}
	if len(have) == 0 {
		return fmt.Sprintf("Add a [provisioner:%s] section with method, host and channel, or write provisioner = none to not provision this host.", ref)
	}
	return fmt.Sprintf("Use one of the provisioners defined in this file (%s), add [provisioner:%s], or write provisioner = none.",
		strings.Join(have, ", "), ref)
}

func inherit(own, env Setting) Setting {
	if own.Set {
		return own
	}
	return env
}

// components parses a component list option (batou's as_list followed by
// parse_host_components).
func (b *builder) components(o rawconfig.Option) []Component {
	var out []Component
	index := map[string]int{}
	vl := newValueLines(o)
	for _, sp := range asList(o.Value()) {
		item := o.Value()[sp.a:sp.b]
		e := parseComponent(item)
		r := vl.rng(sp)
		if e.name == "" {
			// Point at the comma that leaves the empty entry.
			if v := o.Value(); sp.a == sp.b && sp.a > 0 && v[sp.a-1] == ',' {
				r = vl.rng(span{sp.a - 1, sp.a})
			} else if sp.a == sp.b && sp.a < len(v) && v[sp.a] == ',' {
				r = vl.rng(span{sp.a, sp.a + 1})
			}
			b.warnf(r, "Remove the empty entry (a trailing comma leaves one).",
				"empty component name in the component list; batou will report a missing component")
		}
		i, ok := index[e.name]
		if !ok {
			i = len(out)
			index[e.name] = i
			out = append(out, Component{Name: e.name, Range: r})
		}
		out[i].Ignore = out[i].Ignore || e.ignore
		if e.feature != "" {
			out[i].Features = append(out[i].Features, e.feature)
		}
	}
	return out
}

// resolver reads [resolver] like Environment.load_resolver.
func (b *builder) resolver() {
	sec, ok := b.f.Section("resolver")
	if !ok {
		return
	}
	for _, o := range newView(sec).opts {
		vl := newValueLines(o)
		off := 0
		for _, line := range strings.Split(o.Value(), "\n") {
			sp := pyStrip(o.Value(), span{off, off + len(line)})
			off += len(line) + 1
			ip := o.Value()[sp.a:sp.b]
			if ip == "" {
				continue
			}
			r := vl.rng(sp)
			switch {
			case strings.Contains(ip, "."):
				b.env.Resolver = append(b.env.Resolver, ResolverEntry{Name: o.Name(), Address: ip, Range: r})
			case strings.Contains(ip, ":"):
				b.env.Resolver = append(b.env.Resolver, ResolverEntry{Name: o.Name(), Address: ip, IPv6: true, Range: r})
			default:
				b.warnf(r, "Give IPv4 or IPv6 addresses, one a line.",
					"%q is not an IP address; batou will refuse to deploy", ip)
			}
		}
	}
}

// sections keeps [component:NAME] and [vfs], and warns about sections batou
// rejects as superfluous.
func (b *builder) sections() {
	for sec := range b.f.Sections() {
		switch {
		case strings.HasPrefix(sec.Name(), "host:"), strings.HasPrefix(sec.Name(), "provisioner:"):
		case strings.HasPrefix(sec.Name(), "component:"):
			b.env.Overrides = append(b.env.Overrides, &Override{
				Component: strings.TrimPrefix(sec.Name(), "component:"),
				NameRange: sectionSubName(sec, "component:"),
				Options:   newView(sec).opts})
		case sec.Name() == "vfs":
			b.env.VFS = sec
			o, ok := newView(sec).get("sandbox")
			switch {
			case !ok:
				b.warnf(sec.Range(), "Add sandbox = Developer (or Map).", "[vfs] has no sandbox option; batou will refuse to deploy")
			case o.Value() != "Developer" && o.Value() != "Map":
				b.warnf(wholeValue(o), "batou's sandboxes are Developer and Map.", "unknown vfs sandbox %q", o.Value())
			}
		case sec.Name() == "hosts", sec.Name() == "environment", sec.Name() == "resolver":
		default:
			b.warnf(sec.NameRange(),
				"batou knows [environment], [hosts], [host:NAME], [provisioner:NAME], [component:NAME], [resolver] and [vfs]; remove or rename this section.",
				"unknown section [%s]; batou will refuse to deploy", sec.Name())
		}
	}
}

// pyBool reads a Python boolean literal as ast.literal_eval would give it.
// Only True and False are accepted: batou would take any literal and use its
// truth value, but 1, 'yes' and [] in a yes/no option are mistakes.
func pyBool(s string) (value, ok bool) {
	switch s {
	case "True":
		return true, true
	case "False":
		return false, true
	}
	return false, false
}

// pyInt reads a decimal integer as Python's int(str) does: surrounding
// whitespace, an optional sign, digits with single underscores between them.
func pyInt(s string) (int, bool) {
	s = pyStripString(s)
	t := strings.TrimLeft(s, "+-")
	if len(s)-len(t) > 1 || t == "" || t[0] == '_' || t[len(t)-1] == '_' || strings.Contains(t, "__") {
		return 0, false
	}
	n, err := strconv.Atoi(s[:len(s)-len(t)] + strings.ReplaceAll(t, "_", ""))
	if err != nil {
		return 0, false
	}
	return n, true
}
