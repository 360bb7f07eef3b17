# The devhost module's option documentation as NixOS' manual would render
# it (lib.optionAttrSetToDocList), for the test that every option is
# documented and typed.
{ libPath }:
let
  lib = import libPath;
  eval = lib.evalModules {
    modules = [
      ./stubs.nix
      ../default.nix
      { _module.args.pkgs = import ./pkgs.nix; }
    ];
  };
in
map (o: {
  inherit (o) name type visible internal;
  description = o.description or null;
  hasDefault = o ? default;
  defaultText = o.default.text or null;
  hasExample = o ? example;
}) (lib.filter (o: lib.hasPrefix "flyingcircus.roles.devhost." o.name) (lib.optionAttrSetToDocList eval.options))
