# Evaluates the devhost module against the typed stubs with nixpkgs' lib and
# returns the parts of the resulting configuration the tests look at.
#
#   nix-instantiate --eval --strict --json eval.nix \
#     --argstr libPath "$NIXPKGS_LIB" --argstr casePath /path/to/case.nix
#
# casePath is a NixOS-style module setting flyingcircus.roles.devhost.*.
{
  libPath,
  casePath,
  # The module entry point: ../default.nix (channel use, package from
  # pkgs.devhost) unless a test passes the flake-style importApply form.
  modulePath ? ../default.nix,
}:
let
  lib = import libPath;
  eval = lib.evalModules {
    modules = [
      ./stubs.nix
      modulePath
      { _module.args.pkgs = import ./pkgs.nix; }
      casePath
    ];
  };
  c = eval.config;
in
{
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  inherit (c)
    warnings
    containers
    networking
    services
    security
    systemd
    boot
    users
    ;
  # The packages of systemd.packages with their build commands, which the
  # tests run (testdata/pkgs.nix records runCommand's arguments).
  systemdPackages = map (p: {
    inherit (p) name;
    buildCommand = p.buildCommand or null;
    script = p.script or null;
  }) c.systemd.packages;
  environment = {
    etc = lib.mapAttrs (_: f: { inherit (f) text mode; }) c.environment.etc;
    systemPackages = map (p: p.outPath) c.environment.systemPackages;
  };
}
