# Stand-in for nixpkgs' nixos/modules/profiles/installation-device.nix when
# the VM test's node is evaluated without nixpkgs (see ../../standin.nix).
{ }
