# Example host configuration for devhost. On a devhost the NixOS module
# writes /etc/devhost/devhost.hcl from flyingcircus.roles.devhost.*; this file
# is for trying devhost from a fresh clone:
#
#   go run ./cmd/devhost --config examples/devhost.hcl list
#
# Relative paths are relative to this file's directory.

public_address = "dev.example.com"
state_dir      = "state"     # the registry: state/containers/<name>.hcl
generated_dir  = "generated" # the live set `devhost apply` writes; `devhost render` only previews
alias_proxy    = true        # also serve <alias>.<name>.dev.example.com

addresses {
  network      = "10.233.0.0/16"
  host_address = "10.233.0.1"
}

channels {
  allowed_prefixes = [
    "https://hydra.flyingcircus.io/build/",
    "file:///nix/var/nix/profiles/per-user/root/channels/",
  ]
}

acme {
  enable  = true
  email   = "admin@example.com"
  staging = true # an example host must not use up Let's Encrypt's rate limits
}

cleanup {
  enable        = true
  stop_after    = "7d"
  destroy_after = "30d"
  at            = "03:00"
}

nginx {
  server_names_hash_bucket_size = 128
  proxy_timeout                 = "300s"
  client_max_body_size          = "100m"
}

access {
  groups      = ["users", "service"]
  admin_group = "wheel"
}
