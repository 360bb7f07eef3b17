# Evaluates a whole NixOS host with the devhost module and a generated set,
# in a real NixOS (the nixpkgs tree at nixpkgsPath, e.g. NixOS 20.09), and
# returns what the tests look at. compat-20.09.nix back-fills what that
# release lacks, and only here.
#
#   nix-instantiate --eval --strict --json nixos-host.nix \
#     --arg nixpkgsPath /path/to/nixpkgs --arg generatedDir /path/to/generated
{
  nixpkgsPath,
  generatedDir,
  publicAddress ? "dev.example.com",
  acme ? true,
  # addressPool.network6 (null: IPv4 only) and ipv6.outbound.
  network6 ? null,
  outbound ? "nat66",
  # "http-01" or "dns-01" (then with a DNS provider and credentials file).
  challenge ? "http-01",
  # Only the derivation of the whole system and the number of
  # certificates (for the time measurements).
  drvOnly ? false,
  capacity ? 100,
  # Also the text of nginx.conf the nginx module writes (it is exposed as
  # /etc/nginx/nginx.conf, a derivation with its text, with enableReload).
  nginxConfig ? false,
}:
let
  compat = import ./compat-20.09.nix;
  lib = (import (nixpkgsPath + "/lib")).extend compat.lib;
  system = import (nixpkgsPath + "/nixos/lib/eval-config.nix") {
    inherit lib;
    system = "x86_64-linux";
    modules = [
      compat.module
      ../default.nix
      (
        { pkgs, ... }:
        {
          # The devhost package: a real derivation of this nixpkgs, so that
          # the system's derivation can be instantiated (never built).
          nixpkgs.overlays = [
            (self: super: {
              devhost = super.writeShellScriptBin "devhost" "exit 0";
            })
          ];
          boot.loader.grub.enable = false;
          fileSystems."/".device = "/dev/disk/by-label/nixos";
          system.stateVersion = "20.09";
          networking.hostName = "devhost";
          services.nginx.enableReload = nginxConfig;
          flyingcircus.roles.devhost = {
            enable = true;
            inherit publicAddress generatedDir capacity;
            addressPool.network6 = network6;
            ipv6.outbound = outbound;
            acme = {
              enable = acme;
              acceptTerms = true;
              email = "admin@example.com";
              inherit challenge;
              dnsProvider = if challenge == "dns-01" then "rfc2136" else null;
              credentialsFile = if challenge == "dns-01" then "/run/keys/acme-dns.env" else null;
            };
          };
        }
      )
    ];
  };
  c = system.config;
  unit = u: { inherit (u) wantedBy after wants; };
in
if drvOnly then
  {
    drvPath = c.system.build.toplevel.drvPath;
    certs = builtins.length (builtins.attrNames c.security.acme.certs);
  }
else
  {
    drvPath = c.system.build.toplevel.drvPath;
    failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
    # NixOS' declarative containers (devhost declares none).
    containers = builtins.attrNames c.containers;
    # devhost's containers, instances of NixOS' container@ template: the
    # conf files it reads, the drop-in package (its build command, which
    # the test runs) and the target that starts them at boot.
    etc = lib.mapAttrs (_: f: f.text) (
      lib.filterAttrs (n: _: lib.hasPrefix "containers/" n || lib.hasPrefix "nixos-containers/" n) c.environment.etc
    );
    systemdPackages = map (p: {
      inherit (p) name;
      buildCommand = p.buildCommand or null;
      script = p.script or null;
    }) (lib.filter (p: lib.hasPrefix "devhost-" (p.name or "")) c.systemd.packages);
    machinesWants = c.systemd.targets.machines.wants;
    containerUnits = lib.mapAttrs (_: unit) (lib.filterAttrs (n: _: lib.hasPrefix "container@" n) c.systemd.services);
    containerUnitFiles = builtins.attrNames (lib.filterAttrs (n: _: lib.hasPrefix "container@" n) c.systemd.units);
    nginxUnit = unit c.systemd.services.nginx;
    # The ACME units this NixOS made of the certificates.
    acmeUnits = builtins.attrNames (lib.filterAttrs (n: _: lib.hasPrefix "acme-" n) c.systemd.services);
    virtualHosts = lib.mapAttrs (_: v: {
      inherit (v) serverAliases enableACME useACMEHost forceSSL;
      proxyPass = v.locations."/".proxyPass;
    }) c.services.nginx.virtualHosts;
    certs = lib.mapAttrs (_: cert: {
      inherit (cert) domain email dnsProvider group;
      extraDomains = builtins.attrNames cert.extraDomains;
    }) c.security.acme.certs;
    hosts = c.networking.hosts;
    ipv6Forwarding = c.boot.kernel.sysctl."net.ipv6.conf.all.forwarding" or null;
    nat = {
      inherit (c.networking.nat) enable internalInterfaces enableIPv6 internalIPv6s;
    };
    # The rules the firewall's start script runs (NAT is part of it).
    firewallCommands = c.networking.firewall.extraCommands;
    etcHosts = c.environment.etc.hosts.text or "";
    cleanupTimer = {
      inherit (c.systemd.timers.devhost-cleanup) wantedBy timerConfig;
    };
    cleanupService = c.systemd.services.devhost-cleanup.serviceConfig.ExecStart;
    containersDir =
      (builtins.fromJSON (builtins.unsafeDiscardStringContext c.environment.etc."devhost/devhost.hcl".text))
      .containers_dir;
    # Where this NixOS' container units keep the containers' roots.
    containerRoot = c.systemd.services."container@".environment.root or null;
    stateVersion = c.system.stateVersion;
    nginxConfig = if nginxConfig then c.environment.etc."nginx/nginx.conf".source.text else null;
  }
