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

  # A real (instantiable, never built: its builder fails) derivation, so that
  # `nix flake check --no-build` accepts the outputs; `env` becomes part of
  # the derivation (forcing it when the derivation is instantiated), `passthru`
  # is only recorded.
  mkDrv =
    system: name: env: passthru:
    derivation (
      {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-c"
          "echo 'a stand-in for nixpkgs, not buildable' >&2; exit 1"
        ];
      }
      // env
    )
    // passthru;

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
      # NixOS' toplevel depends on (nearly) every option value; forcing these
      # makes type errors fail here as they would there.
      c = eval.config;
      settled = builtins.deepSeq [
        c.containers
        c.services
        c.networking
        c.systemd
        c.security
        c.boot
        c.environment.etc
        c.users
        c.warnings
      ];
    in
    eval
    // {
      inherit failed;
      config = lib.recursiveUpdate eval.config {
        system.build.toplevel =
          if failed == [ ] then
            settled (mkDrv pkgs.stdenv.hostPlatform.system "nixos-system" { } { })
          else
            throw "Failed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}";
      };
    };

  pkgsFor =
    system:
    let
      drv = mkDrv system;
      pkgs = {
        inherit lib;
        path = "/stand-in/nixpkgs";
        stdenv = drv "stdenv" { } {
          hostPlatform.system = system;
          buildPlatform.canExecute = _: true;
        };
        stdenvNoCC = drv "stdenv-no-cc" { } { };
        callPackage =
          f: overrides:
          let
            fn = if builtins.isFunction f then f else import f;
          in
          fn (builtins.intersectAttrs (builtins.functionArgs fn) pkgs // overrides);
        buildGoModule = goModule "buildGoModule";
        buildGo126Module = goModule "buildGo126Module";
        mkShell = args: drv "shell" { } { shellArgs = args; };
        runCommand =
          name: env: script:
          drv name { inherit script; } { inherit env script; };
        writeText = name: text: drv name { inherit text; } { inherit text; };
        writeShellScript = name: text: drv name { inherit text; } { inherit text; };
        # A testScript that takes the nodes is forced by flake-outputs.nix,
        # which evaluates the nodes.
        testers.runNixOSTest =
          args:
          drv "vm-test-${args.name}" (lib.optionalAttrs (builtins.isString args.testScript) {
            inherit (args) testScript;
          }) { testArgs = args; };
      }
      // lib.genAttrs [
        "coreutils"
        "curl"
        "go_1_26"
        "golangci-lint"
        "gopls"
        "grub2"
        "installShellFiles"
        "jq"
        "nix"
        "nixfmt-rfc-style"
        "nixfmt-tree"
        "openssl"
        "pebble"
        "python3"
      ] (name: drv name { } { });

      goModule =
        builder: args:
        drv "${args.pname}-${args.version}-${system}"
          {
            inherit (args) vendorHash ldflags;
            postInstall = args.postInstall or "";
          }
          {
            inherit builder system;
            goArgs = args;
            overrideAttrs = f: goModule builder (args // f args);
          };
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
