# Typed stand-ins for the NixOS options that the flake's example hosts and
# the VM test's node set besides the devhost role (types as in nixpkgs).
# Used together with ../../nixos-module/testdata/stubs.nix.
{ lib, ... }:
let
  types = lib.types;
  opt =
    type: default:
    lib.mkOption {
      inherit type default;
    };
  req = type: lib.mkOption { inherit type; };
in
{
  options = {
    boot.loader.grub.devices = opt (types.listOf types.str) [ ];
    fileSystems = opt (types.attrsOf (
      types.submodule {
        options = {
          device = opt (types.nullOr types.str) null;
          fsType = opt types.str "auto";
        };
      }
    )) { };
    # nixos/lib/testing/nixos-test-base.nix: off in test nodes unless set.
    system.switch.enable = opt types.bool false;
    system.includeBuildDependencies = opt types.bool false;
    system.extraDependencies = opt (types.listOf types.pathInStore) [ ];
    nix.settings = opt (types.attrsOf (
      types.nullOr (
        types.oneOf [
          types.bool
          types.int
          types.str
          (types.listOf types.str)
        ]
      )
    )) { };
    virtualisation = {
      cores = opt types.ints.positive 1;
      memorySize = opt types.ints.positive 1024;
      diskSize = opt types.ints.positive 1024;
      writableStore = opt types.bool true;
    };
    users.users = opt (types.attrsOf (
      types.submodule {
        options = {
          isNormalUser = opt types.bool false;
          description = opt types.str "";
          extraGroups = opt (types.listOf types.str) [ ];
        };
      }
    )) { };
    networking.extraHosts = opt types.lines "";
    networking.nameservers = opt (types.listOf types.str) [ ];
    security.pki.certificateFiles = opt (types.listOf types.path) [ ];
    security.acme.defaults.dnsPropagationCheck = opt types.bool true;
    networking.primaryIPAddress = opt types.str "192.168.1.2";
    # What nixos/lib/testing/network.nix gives the second node (the stubs
    # cannot merge the framework's definition, so it is the default here).
    networking.interfaces =
      let
        addresses = opt (types.listOf (
          types.submodule {
            options = {
              address = req types.str;
              prefixLength = req types.int;
            };
          }
        )) [ ];
      in
      opt
        (types.attrsOf (
          types.submodule {
            options = {
              ipv4.addresses = addresses;
              ipv6.addresses = addresses;
            };
          }
        ))
        {
          eth1 = {
            ipv4.addresses = [
              {
                address = "192.168.1.2";
                prefixLength = 24;
              }
            ];
            ipv6.addresses = [
              {
                address = "2001:db8:1::2";
                prefixLength = 64;
              }
            ];
          };
        };
  };
}
