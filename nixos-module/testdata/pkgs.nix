# A stand-in for nixpkgs' `pkgs` as far as the devhost module uses it: the
# packages it uses. Recorded, never built.
{
  coreutils = {
    type = "derivation";
    name = "coreutils-stand-in";
    outPath = "/nix/store/00000000000000000000000000000000-coreutils-stand-in";
  };
  openssl = {
    type = "derivation";
    name = "openssl-stand-in";
    outPath = "/nix/store/00000000000000000000000000000000-openssl-stand-in";
  };
  devhost = {
    type = "derivation";
    name = "devhost-stand-in";
    outPath = "/nix/store/00000000000000000000000000000000-devhost-stand-in";
  };
  # nixpkgs' runCommand, recorded: the tests read the build command and
  # its inputs (and run it themselves).
  runCommand = name: env: buildCommand: env // {
    type = "derivation";
    inherit name buildCommand;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
}
