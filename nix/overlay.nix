# nixpkgs overlay providing `pkgs.devhost`, for hosts that use the NixOS
# module without the flake (see ../nixos-module/default.nix).
final: prev: {
  devhost = final.callPackage ./package.nix { };
}
