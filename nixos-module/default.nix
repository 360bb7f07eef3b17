# The devhost NixOS module, for use without the flake:
#
#   imports = [ /path/to/devhost/nixos-module ];
#   nixpkgs.overlays = [ (import /path/to/devhost/nix/overlay.nix) ];   # provides pkgs.devhost
#   flyingcircus.roles.devhost = { enable = true; publicAddress = "dev.example.com"; };
#
# The flake's nixosModules.default is the same module with its own package as
# the default of flyingcircus.roles.devhost.package.
{
  _file = ./default.nix;
  imports = [ (import ./module.nix { }) ];
}
