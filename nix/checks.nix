# The flake's checks for one system (`nix flake check` runs them all):
#
#   package              the package (devhost, fc-build-dev-container, completions, man pages)
#   go-tests             every Go test, with nix-instantiate, python3 and nixpkgs' lib
#                        available, so the Nix evaluation tests run too
#   module-eval-*        NixOS systems with the module and an example configuration,
#                        evaluated as far as the toplevel's derivation (type errors
#                        and failed assertions fail the check); nothing is built
#   example-generated-set  `devhost render` of the bundled example, evaluated by Nix
#   devhost-vm           the NixOS VM test (nix/vm-test.nix), ACME off; needs KVM
#   devhost-vm-http01    the same with certificates from pebble over http-01
#   devhost-vm-dns01     the same over dns-01 (wildcards), and HTTPS right after ensure
{
  pkgs,
  self,
  nixosSystem,
  nixpkgsLib,
}:
let
  lib = pkgs.lib;
  system = pkgs.stdenv.hostPlatform.system;
  devhost = self.packages.${system}.default;

  vmTest =
    challenge:
    import ./vm-test.nix {
      inherit pkgs devhost challenge;
      devhostModule = self.nixosModules.default;
    };

  # A Nix that works inside the build sandbox: a chroot store under $TMPDIR
  # (its logical store directory stays /nix/store, so store-path checks of
  # option types behave as on a host).
  nixInSandbox = ''
    export HOME=$TMPDIR/home NIX_REMOTE="local?root=$TMPDIR/nix-root"
    mkdir -p $HOME
  '';

  # What every example host needs besides the role.
  exampleHost = {
    boot.loader.grub.devices = [ "/dev/vda" ];
    fileSystems."/" = {
      device = "/dev/vda";
      fsType = "ext4";
    };
    system.stateVersion = "25.11";
  };

  examples = {
    # The role with what it cannot default: the public address and the ACME account.
    minimal = {
      flyingcircus.roles.devhost = {
        enable = true;
        publicAddress = "dev.example.com";
        acme = {
          acceptTerms = true;
          email = "admin@example.com";
        };
        # A pure (flake) evaluation cannot read /var/lib/devhost: give the
        # generated set as a value.
        generatedSet = import ./examples/empty-generated-set.nix;
      };
    };
    # The platform's settings: fc-manage, self-signed certificates, no cleanup.
    platform = {
      flyingcircus.roles.devhost = {
        enable = true;
        publicAddress = "dev.fcio.example";
        rebuildCommand = [
          "fc-manage"
          "switch"
        ];
        acme.enable = false;
        cleanupContainers = false;
        addressPool = {
          network = "10.100.0.0/16";
          hostAddress = "10.100.0.1";
        };
        compatibility.bootstrapKey = true;
        capacity = 500;
        generatedSet = import ./examples/empty-generated-set.nix;
      };
    };
    # Two containers, their virtual hosts and hosts entries, as the generator writes them.
    generated-set = {
      flyingcircus.roles.devhost = {
        enable = true;
        publicAddress = "dev.example.com";
        acme = {
          acceptTerms = true;
          email = "admin@example.com";
        };
        generatedSet = import ./examples/generated-set.nix;
      };
    };
  };

  moduleEval =
    name: example:
    let
      toplevel =
        (nixosSystem {
          inherit system;
          modules = [
            self.nixosModules.default
            exampleHost
            example
          ];
        }).config.system.build.toplevel;
    in
    # Forcing drvPath evaluates the whole system, assertions included; the
    # context is dropped so that nothing gets built.
    pkgs.runCommand "module-eval-${name}" { } ''
      echo ${builtins.unsafeDiscardStringContext toplevel.drvPath} > $out
    '';
in
lib.mapAttrs' (name: example: lib.nameValuePair "module-eval-${name}" (moduleEval name example)) examples
// {
  package = devhost;

  go-tests = devhost.overrideAttrs (old: {
    pname = "devhost-go-tests";
    subPackages = [ ];
    doCheck = true;
    nativeCheckInputs = (old.nativeCheckInputs or [ ]) ++ [
      pkgs.nix
      pkgs.python3
    ];
    NIXPKGS_LIB = nixpkgsLib;
    preCheck = (old.preCheck or "") + nixInSandbox;
    # Only the tests are of interest.
    postInstall = "";
  });

  example-generated-set =
    pkgs.runCommand "devhost-example-generated-set"
      {
        nativeBuildInputs = [
          devhost
          pkgs.nix
          pkgs.jq
        ];
      }
      ''
        ${nixInSandbox}
        cp -r ${../examples} examples
        chmod -R u+w examples
        devhost --config examples/devhost.hcl render --out $TMPDIR/generated
        nix-instantiate --eval --strict --json $TMPDIR/generated/default.nix > set.json
        jq -e '.version == 1 and (.containers | length) > 0 and (.virtualHosts | length) > 0' set.json
        mkdir $out && cp -r $TMPDIR/generated set.json $out/
      '';

  devhost-vm = vmTest null;
  devhost-vm-http01 = vmTest "http-01";
  devhost-vm-dns01 = vmTest "dns-01";
}
