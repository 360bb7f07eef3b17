# Evaluates devhost's flake.nix `outputs` with stand-in inputs (standin.nix)
# and returns what tests/nix/flake_test.go checks: the attribute names per
# system, the package's recorded arguments, the module-eval checks forced
# through the stub-typed module system, and the VM test's nodes.
{ libPath, root }:
let
  lib = import libPath;
  standIn = import ./standin.nix { inherit lib; };
  flake = import (root + "/flake.nix");
  self = outputs // {
    outPath = root;
    shortRev = "abc1234";
    lastModifiedDate = "20260510123456";
  };
  outputs = flake.outputs {
    inherit self;
    nixpkgs = standIn.nixpkgs;
  };
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  perSystem = f: lib.genAttrs systems f;

  # What the test framework gives the VM test's nodes from the other nodes
  # (addresses in the order of the node names, pebble's test CA).
  standInNodes = {
    acme = {
      networking.primaryIPAddress = "192.168.1.1";
      test-support.acme = {
        caDomain = "acme.test";
        caCert = "/stand-in/nixpkgs/nixos/tests/common/acme/server/ca.cert.pem";
      };
    };
    client.networking.primaryIPAddress = "192.168.1.2";
    dnsserver.networking.primaryIPAddress = "192.168.1.4";
  };

  vmChecks = [
    "devhost-vm"
    "devhost-vm-http01"
    "devhost-vm-dns01"
  ];
  vmFor =
    system: check:
    let
      test = outputs.checks.${system}.${check}.testArgs;
      # The test's own nodes and those its imports add (attribute sets
      # here, merged per node by the test framework).
      nodeModules = lib.zipAttrsWith (_: ms: ms) ([ test.nodes ] ++ map (m: m.nodes or { }) (test.imports or [ ]));
      pkgs = standIn.pkgsFor system;
      node = standIn.evalSystem {
        inherit pkgs;
        modules = nodeModules.devhost;
        specialArgs = {
          modulesPath = toString ./modules-stand-in;
          nodes = standInNodes;
        };
      };
      role = node.config.flyingcircus.roles.devhost;
    in
    {
      inherit (test) name;
      nodes = builtins.attrNames nodeModules;
      testScript =
        if builtins.isFunction test.testScript then
          test.testScript { nodes = standInNodes // { devhost = node.config; }; }
        else
          test.testScript;
      failedAssertions = node.failed;
      publicAddress = role.publicAddress;
      package = role.package.outPath;
      extraDependencies = node.config.system.extraDependencies;
      hostConfig = node.config.environment.etc."devhost/devhost.hcl".text;
      pkgsReadOnly = test.node.pkgsReadOnly or true;
      switchEnable = node.config.system.switch.enable;
      nameservers = node.config.networking.nameservers;
      certificateFiles = node.config.security.pki.certificateFiles;
      acmeCerts = lib.mapAttrs (_: c: {
        inherit (c)
          domain
          extraDomainNames
          dnsProvider
          credentialsFile
          ;
      }) node.config.security.acme.certs;
      virtualHosts = builtins.attrNames node.config.services.nginx.virtualHosts;
      # The configuration.nix the VM switches to (recorded by the stand-in
      # writeText).
      rebuildConfig =
        (lib.findFirst (d: d.name or "" == "configuration.nix") (throw "no configuration.nix in system.extraDependencies")
          node.config.system.extraDependencies
        ).text;
    };
in
{
  outputs = builtins.attrNames outputs;
  nixosModules = builtins.attrNames outputs.nixosModules;
  overlays = builtins.attrNames outputs.overlays;
  packages = perSystem (s: builtins.attrNames outputs.packages.${s});
  devShells = perSystem (s: builtins.attrNames outputs.devShells.${s});
  formatter = perSystem (s: outputs.formatter.${s}.name);
  checks = perSystem (s: builtins.attrNames outputs.checks.${s});

  package = perSystem (
    s:
    let
      p = outputs.packages.${s}.default;
    in
    {
      inherit (p) name builder system;
      path = p.outPath;
      inherit (p.goArgs)
        pname
        version
        vendorHash
        subPackages
        ldflags
        postInstall
        ;
    }
  );
  overlayPackage = ((outputs.overlays.default (standIn.pkgsFor "x86_64-linux") { }).devhost).outPath;
  goTests = perSystem (
    s:
    let
      g = outputs.checks.${s}.go-tests.goArgs;
    in
    {
      inherit (g) pname doCheck subPackages NIXPKGS_LIB;
      checkInputs = map (d: d.name) g.nativeCheckInputs;
    }
  );
  # Forcing the script forces each example system's toplevel, i.e. its
  # evaluation with the module, stubs and assertions.
  moduleEval = perSystem (
    s:
    lib.mapAttrs (_: c: c.script) (
      lib.filterAttrs (n: _: lib.hasPrefix "module-eval-" n) outputs.checks.${s}
    )
  );
  # The flake's module defaults the package to the flake's own.
  flakeModulePackage =
    let
      node = standIn.evalSystem {
        pkgs = standIn.pkgsFor "aarch64-linux";
        modules = [
          outputs.nixosModules.default
          { flyingcircus.roles.devhost.enable = true; }
        ];
      };
    in
    map (p: p.outPath) node.config.environment.systemPackages;
  vm = perSystem (s: lib.genAttrs vmChecks (vmFor s));
}
