# NixOS' own declarative containers, for comparison with devhost's
# instances: a plain NixOS host (nixpkgsPath, e.g. NixOS 20.09) declaring
# the generated set's containers as containers.<name>, the way the devhost
# module did before it ran them as instances of the container@ template.
# Returns the conf files NixOS writes for them and their units' settings.
#
#   nix-instantiate --eval --strict --json declarative-containers.nix \
#     --arg nixpkgsPath /path/to/nixpkgs --arg generatedDir /path/to/generated
{
  nixpkgsPath,
  generatedDir,
  timeout ? "2min",
}:
let
  lib = import (nixpkgsPath + "/lib");
  generated = import (generatedDir + "/default.nix");
  system = import (nixpkgsPath + "/nixos/lib/eval-config.nix") {
    system = "x86_64-linux";
    modules = [
      {
        boot.loader.grub.enable = false;
        fileSystems."/".device = "/dev/disk/by-label/nixos";
        system.stateVersion = "20.09";
        containers = lib.mapAttrs (_: ct: ct // { timeoutStartSec = timeout; }) generated.containers;
      }
    ];
  };
  c = system.config;
in
{
  etc = lib.mapAttrs (_: f: f.text) (
    lib.filterAttrs (n: _: lib.hasPrefix "containers/" n || lib.hasPrefix "nixos-containers/" n) c.environment.etc
  );
  units = lib.mapAttrs (n: u: {
    inherit (u) wantedBy wants after;
    timeoutStartSec = u.serviceConfig.TimeoutStartSec;
  }) (lib.filterAttrs (n: _: n != "container@" && lib.hasPrefix "container@" n) c.systemd.services);
}
