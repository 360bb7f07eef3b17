package names

import (
	"fmt"
	"slices"
	"strings"
)

// MaxAliases is the most aliases a container may have: Let's Encrypt
// issues at most 100 names per certificate, and a container's certificate
// names <name>.<public address> and every <alias>.<name>.<public address>.
const MaxAliases = 99

// reserved are names no container may take. A container's name resolves
// to the container on the devhost (the module writes it into /etc/hosts),
// so a container named like one of these would capture the host's own
// lookups of it: NixOS' default host name, WPAD proxy discovery, cloud
// metadata services, the usual names of the gateway and of the host.
var reserved = []string{
	"localhost", "localdomain", "broadcasthost", "nixos", "wpad", "isatap",
	"metadata", "gateway", "router", "host", "devhost",
}

// Reserved reports whether name is one of the names no container may
// take, or one of others (the host's own names, compared case-insensitively
// and by their first label as well).
func Reserved(name string, others ...string) bool {
	if slices.Contains(reserved, name) {
		return true
	}
	for _, o := range others {
		o = strings.ToLower(strings.TrimSuffix(o, "."))
		short, _, _ := strings.Cut(o, ".")
		if name == o || name == short {
			return true
		}
	}
	return false
}

// NginxBucketSize is the smallest power of two nginx accepts as
// server_names_hash_bucket_size for a server name of n bytes: nginx stores
// each name with a pointer and its length, aligned to 8 bytes, and needs
// one more pointer at the end of a bucket (ngx_hash_init refuses to start
// with "could not build server_names_hash" otherwise). The NixOS module
// derives its default the same way, from the longest possible name.
func NginxBucketSize(n int) int {
	need := 8 + (n+2+7)/8*8 + 8
	b := 32
	for b < need {
		b *= 2
	}
	return b
}

// LongestServerName is the length of the longest name a container can
// have on a devhost with the given public address:
// <alias>.<name>.<public address>.
func LongestServerName(public string) int {
	return MaxLabel + 1 + MaxContainerName + 1 + len(public)
}

// ServerName checks that the server name fq fits nginx'
// server_names_hash_bucket_size.
func ServerName(fq string, bucketSize int) error {
	if need := NginxBucketSize(len(fq)); need > bucketSize {
		return &Error{Kind: "server name", Value: fq,
			Why:  fmt.Sprintf("it needs an nginx server_names_hash_bucket_size of %d, the host has %d", need, bucketSize),
			Hint: fmt.Sprintf("use a shorter alias or name, or have an admin raise nginx.serverNamesHashBucketSize to %d", need)}
	}
	return nil
}
