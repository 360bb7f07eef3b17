{
  description = "devhost: development deployments of batou environments as NixOS containers on a shared host";

  # A NixOS release with containers.<name>.path, services.nginx and
  # security.acme as the module uses them, and Go 1.26 (go_1_26).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # e.g. "20260510-8fd9daa"; "dirty" for an uncommitted work tree.
      version = "${builtins.substring 0 8 (self.lastModifiedDate or "19700101")}-${
        self.shortRev or self.dirtyShortRev or "dirty"
      }";
      devhostFor = pkgs: pkgs.callPackage ./nix/package.nix { inherit version; };
    in
    {
      overlays.default = final: prev: { devhost = devhostFor final; };

      packages = forAllSystems (pkgs: rec {
        devhost = devhostFor pkgs;
        default = devhost;
      });

      # The module, with this flake's package as the default of
      # flyingcircus.roles.devhost.package.
      nixosModules.devhost = lib.modules.importApply ./nixos-module/module.nix {
        defaultPackage = pkgs: self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };
      nixosModules.default = self.nixosModules.devhost;

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          # golangci-lint is a tool dependency in go.mod (`go tool golangci-lint`,
          # `make lint`), built with this Go; nixpkgs' may be built with an older one.
          packages = [
            pkgs.go_1_26
            pkgs.gopls
            pkgs.nix
            pkgs.nixfmt-tree
            pkgs.python3
          ];
          # The module's evaluation tests read nixpkgs' lib from here.
          NIXPKGS_LIB = "${nixpkgs}/lib";
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-tree);

      checks = forAllSystems (
        pkgs:
        import ./nix/checks.nix {
          inherit pkgs self;
          inherit (nixpkgs.lib) nixosSystem;
          nixpkgsLib = "${nixpkgs}/lib";
        }
      );
    };
}
