package provision

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/flyingcircusio/devhost/internal/names"
)

// ContainerStatus is what `devhost connect` needs of `devhost status
// --json NAME`.
type ContainerStatus struct {
	Name       string   `json:"name"`
	Owner      string   `json:"owner"`
	HostKey    string   `json:"host_key"`
	SharedWith []string `json:"shared_with"`
}

// Status runs `sudo devhost status --json NAME` on the devhost (status is
// in the sudo rules of every devhost group; through sudo it can read the
// container's host key, which lies in root's directory).
func (d *SSHDevhost) Status(ctx context.Context, name string) (ContainerStatus, error) {
	if err := names.Container(name); err != nil {
		return ContainerStatus{}, err
	}
	out, err := d.run(ctx, "devhost status", []string{d.program(), "status", "--json", name}, nil)
	if err != nil {
		return ContainerStatus{}, err
	}
	var st ContainerStatus
	if err := json.Unmarshal(out, &st); err != nil {
		return ContainerStatus{}, fmt.Errorf("%s: devhost status: unexpected answer %q: %w", d.Host, truncate(out), err)
	}
	if st.Name != name {
		return ContainerStatus{}, fmt.Errorf("%s: devhost status: asked for %q, got %q", d.Host, name, st.Name)
	}
	return st, nil
}

// Connection is what Connect wrote.
type Connection struct {
	Name       string `json:"name"`
	Devhost    string `json:"devhost"`
	SSHConfig  string `json:"ssh_config"`
	KnownHosts string `json:"known_hosts"`
	HostKey    string `json:"host_key"`
}

// Connect writes ssh_config_NAME and ssh_known_hosts_NAME in dir for
// container name on the devhost d: ProxyJump through the devhost, user
// developer, the user's own keys, and the host key `devhost status`
// reports pinned (StrictHostKeyChecking yes, HostKeyAlias NAME), so that
// `ssh -F ssh_config_NAME NAME` reaches the container with nothing passed
// around. home is the user's home for the ~/.ssh/config include.
func Connect(ctx context.Context, d *SSHDevhost, name, dir, home string) (*Connection, error) {
	st, err := d.Status(ctx, name)
	if err != nil {
		return nil, err
	}
	if st.HostKey == "" {
		return nil, fmt.Errorf("%s: container %q has no host key yet (has it started?); try again after its next `devhost up`", d.Host, name)
	}
	key, err := ParseHostKey(st.HostKey)
	if err != nil {
		return nil, fmt.Errorf("%s: devhost status: %w", d.Host, err)
	}
	cfgPath, khPath := SSHConfigPaths(dir, name)
	kh := KnownHosts{name: key}
	if err := kh.Write(khPath); err != nil {
		return nil, err
	}
	c := SSHConfig{
		Hosts:      []SSHHost{{Real: name, EnvName: name, Devhost: d.Host, HostKey: key}},
		KnownHosts: khPath,
		Includes:   DefaultIncludes(home, dir),
	}
	if err := WriteSSHConfig(cfgPath, c); err != nil {
		return nil, err
	}
	return &Connection{Name: name, Devhost: d.Host, SSHConfig: cfgPath, KnownHosts: khPath, HostKey: key}, nil
}

// ConnectedDevhost is the devhost an existing ssh_config_NAME in dir jumps
// through ("" when there is none), so `devhost connect NAME` can refresh it
// without --devhost.
func ConnectedDevhost(dir, name string) (string, error) {
	cfgPath, _ := SSHConfigPaths(dir, name)
	hosts, err := ReadSSHHosts(cfgPath)
	if err != nil {
		return "", err
	}
	for _, h := range hosts {
		if h.Real == name && h.Devhost != "" {
			return h.Devhost, nil
		}
	}
	return "", nil
}
