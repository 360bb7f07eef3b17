# The sudoers file a NixOS host with the devhost module gets: the devhost
# module evaluated together with NixOS' own sudo module (the real
# nixos/modules/security/sudo.nix of nixpkgs, which turns
# security.sudo.extraRules into sudoers text), the module tests' typed stubs
# standing in for the rest of NixOS.
#
#   nix-instantiate --eval --strict --json sudoers.nix \
#     --argstr libPath "$NIXPKGS_LIB" --argstr nixpkgs /path/to/nixpkgs \
#     --argstr package /dir/with/bin/devhost
#
# Returns { sudoers = "<text>"; failedAssertions = [ … ]; }.
{
  libPath,
  # A NixOS tree holding nixos/modules/security/sudo.nix.
  nixpkgs,
  # Where the test installed devhost: <package>/bin/devhost and
  # <package>/bin/fc-build-dev-container.
  package,
  groups ? [ "users" ],
  adminGroup ? "wheel",
}:
let
  base = import libPath;
  # NixOS 20.09's sudo module documents an example with literalExample,
  # which newer nixpkgs' lib has dropped in favour of literalExpression.
  lib = base // {
    literalExample = base.literalExpression or (text: { _type = "literalExpression"; inherit text; });
  };
  standIn = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  # The stubs without their stand-in for security.sudo: the real module
  # declares it.
  stubs =
    args:
    let
      m = import ../../../nixos-module/testdata/stubs.nix args;
    in
    m // { options = m.options // { security = builtins.removeAttrs m.options.security [ "sudo" ]; }; };
  eval = lib.evalModules {
    specialArgs = { inherit lib; };
    modules = [
      stubs
      "${nixpkgs}/nixos/modules/security/sudo.nix"
      ../../../nixos-module/default.nix
      {
        # What the real sudo module sets besides the sudoers text.
        options.security.wrappers = lib.mkOption { type = lib.types.attrs; default = { }; };
        options.security.pam.services = lib.mkOption { type = lib.types.attrs; default = { }; };
      }
      {
        _module.args.pkgs = import ../../../nixos-module/testdata/pkgs.nix // {
          sudo = standIn "sudo";
          buildPackages.sudo = standIn "sudo";
          writeText = name: _: standIn name;
          runCommand = name: _: _: standIn name;
        };
        flyingcircus.roles.devhost = {
          enable = true;
          publicAddress = "dev.example.com";
          generatedDir = "/nonexistent/devhost-generated";
          acme.acceptTerms = true;
          acme.email = "admin@example.com";
          package = {
            type = "derivation";
            name = "devhost";
            outPath = package;
          };
          inherit groups adminGroup;
        };
      }
    ];
  };
  c = eval.config;
in
{
  sudoers = c.security.sudo.configFile;
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
}
