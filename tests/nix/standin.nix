# Stand-in flake inputs for evaluating devhost's flake.nix without nixpkgs:
# nixpkgs' real lib (from NIXPKGS_LIB) and a minimal `pkgs` whose
# derivations are recorded as attribute sets, never built. lib.nixosSystem
# evaluates its modules against the typed option stubs, so the flake's
# module-eval checks really evaluate here (as far as the stubs reach).
{ lib }:
let
  stubs = [
    ../../nixos-module/testdata/stubs.nix
    ./vm-stubs.nix
  ];

  storePath = name: "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" name)}-${name}";
  mkDrv =
    name: attrs:
    {
      type = "derivation";
      inherit name;
      outPath = storePath name;
      drvPath = storePath "${name}.drv";
    }
    // attrs;

  # Evaluates modules like lib.nixosSystem would, against the stubs, and
  # fails like NixOS on failed assertions when the toplevel is forced.
  evalSystem =
    {
      pkgs,
      modules,
      specialArgs ? { },
    }:
    let
      eval = lib.evalModules {
        inherit specialArgs;
        modules = stubs ++ modules ++ [ { _module.args.pkgs = pkgs; } ];
      };
      failed = map (a: a.message) (lib.filter (a: !a.assertion) eval.config.assertions);
    in
    eval
    // {
      inherit failed;
      config = lib.recursiveUpdate eval.config {
        system.build.toplevel =
          if failed == [ ] then
            mkDrv "nixos-system" { }
          else
            throw "Failed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}";
      };
    };

  pkgsFor =
    system:
    let
      pkgs = {
        inherit lib;
        path = "/stand-in/nixpkgs";
        stdenv = mkDrv "stdenv" {
          hostPlatform.system = system;
          buildPlatform.canExecute = _: true;
        };
        stdenvNoCC = mkDrv "stdenv-no-cc" { };
        callPackage =
          f: overrides:
          let
            fn = if builtins.isFunction f then f else import f;
          in
          fn (builtins.intersectAttrs (builtins.functionArgs fn) pkgs // overrides);
        buildGoModule = goModule "buildGoModule";
        buildGo126Module = goModule "buildGo126Module";
        mkShell = args: mkDrv "shell" { shellArgs = args; };
        runCommand =
          name: env: script:
          mkDrv name {
            inherit env script;
          };
        writeText = name: text: mkDrv name { inherit text; };
        testers.runNixOSTest = args: mkDrv "vm-test-${args.name}" { testArgs = args; };
      }
      // lib.genAttrs [
        "coreutils"
        "curl"
        "go_1_26"
        "golangci-lint"
        "gopls"
        "installShellFiles"
        "jq"
        "nix"
        "nixfmt-rfc-style"
        "nixfmt-tree"
        "openssl"
        "python3"
      ] (name: mkDrv name { });

      goModule =
        builder: args:
        let
          drv = mkDrv "${args.pname}-${args.version}-${system}" {
            inherit builder system;
            goArgs = args;
            overrideAttrs = f: goModule builder (args // f args);
          };
        in
        drv;
    in
    pkgs;

  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
in
{
  inherit pkgsFor evalSystem;
  nixpkgs = {
    outPath = "/stand-in/nixpkgs";
    lib = lib // {
      nixosSystem =
        { system, modules }:
        evalSystem {
          pkgs = pkgsFor system;
          inherit modules;
        };
    };
    legacyPackages = lib.genAttrs systems pkgsFor;
  };
}
