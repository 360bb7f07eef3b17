# NixOS VM test of a whole devhost: the module on a NixOS host, two
# containers with aliases built from a local file:// channel, a client that
# reaches them through nginx by their public names, destroy, a broken
# provision.nix that fails alone, and cleanup (stop, then destroy).
#
# It needs KVM and nixpkgs (run by `nix flake check` as checks.<system>.devhost-vm).
# devhost rebuilds the host with nixos-rebuild inside the VM, so the VM holds
# the build dependencies of its own system (as nixpkgs' nixos-rebuild tests do).
{
  pkgs,
  devhost,
  devhostModule,
}:
let
  lib = pkgs.lib;

  # A channel as devhost and batou expect one: a directory with `nixpkgs`.
  channel = pkgs.runCommand "devhost-test-channel" { } ''
    mkdir -p $out
    ln -s ${pkgs.path} $out/nixpkgs
  '';

  # The containers' own web servers use this certificate (the host's nginx
  # proxies to https://NAME and does not verify it).
  cert = pkgs.runCommand "devhost-test-cert" { nativeBuildInputs = [ pkgs.openssl ]; } ''
    mkdir -p $out
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=container \
      -keyout $out/key.pem -out $out/cert.pem
    chmod 444 $out/key.pem
  '';

  provision =
    name:
    pkgs.writeText "provision-${name}.nix" ''
      { ... }:
      {
        services.nginx = {
          enable = true;
          virtualHosts.default = {
            default = true;
            addSSL = true;
            sslCertificate = "${cert}/cert.pem";
            sslCertificateKey = "${cert}/key.pem";
            locations."/".return = "200 'hello from ${name}\n'";
          };
        };
      }
    '';
  broken = pkgs.writeText "provision-broken.nix" ''
    { ... }: { services.nginx.enable = "certainly"; }
  '';

  containers = {
    web1 = [
      "www"
      "api"
    ];
    web2 = [ "www" ];
  };
  # An IPv6 address of the client, beside the test network's own: a
  # container reaches it through the host's NAT66.
  clientAddress6 = "2001:db8:1::c";

  publicNames = lib.concatLists (
    lib.mapAttrsToList (name: aliases: [ "${name}.dev.test" ] ++ map (a: "${a}.${name}.dev.test") aliases) containers
  );

  # The node's addresses on the test network (192.168.1.N on eth1, set by
  # the test framework). The configuration the VM switches to must keep
  # them: switching to one without them stops network-addresses-eth1.service,
  # which deletes the address, and the client could no longer reach the host.
  testAddresses =
    node:
    lib.mapAttrs (_: i: {
      ipv4.addresses = map (a: { inherit (a) address prefixLength; }) i.ipv4.addresses;
      ipv6.addresses = map (a: { inherit (a) address prefixLength; }) i.ipv6.addresses;
    }) node.networking.interfaces;

  # What the VM rebuilds itself from (a function of the node's
  # configuration): its own hardware configuration, the test
  # instrumentation, its test network addresses, the module and the role.
  hostConfiguration =
    node:
    pkgs.writeText "configuration.nix" ''
      { lib, ... }:
      {
        imports = [
          ./hardware-configuration.nix
          <nixpkgs/nixos/modules/testing/test-instrumentation.nix>
          ${../nixos-module}
          ${./vm-test-role.nix}
        ];
        flyingcircus.roles.devhost.package = "${devhost}";
        boot.loader.grub = {
          enable = true;
          device = "/dev/vda";
          forceInstall = true;
        };
        documentation.enable = false;
        nix.settings.substituters = lib.mkForce [ ];
        nix.nixPath = [
          "nixpkgs=${pkgs.path}"
          "nixos-config=/etc/nixos/configuration.nix"
        ];
        networking.interfaces = ${lib.generators.toPretty { multiline = false; } (testAddresses node)};
      }
    '';

  # provision.nix on stdin: devhost, run as root, reads a file only when it
  # belongs to the caller, and these store files belong to root.
  ensure =
    name: aliases:
    "su - alice -c 'sudo devhost ensure ${name} --channel file://${channel} ${
      lib.concatMapStringsSep " " (a: "--alias ${a}") aliases
    } --provision-nix - < ${provision name}' >&2";
  # Python statements, one per line, indented into a `with` block.
  pyBlock = lines: lib.concatMapStringsSep "\n" (l: "    " + l) lines;
  ensureAll = lib.concatLists (
    lib.mapAttrsToList (name: aliases: [
      ''devhost.succeed("${ensure name aliases}")''
      ''devhost.wait_for_unit("container@${name}.service")''
    ]) containers
  );
  serveAll = lib.concatLists (
    lib.mapAttrsToList (
      name: aliases:
      map (host: ''served("${host}", "hello from ${name}")'') (
        [ "${name}.dev.test" ] ++ map (a: "${a}.${name}.dev.test") aliases
      )
    ) containers
  );
in
pkgs.testers.runNixOSTest {
  name = "devhost";

  # installation-device.nix (as in nixpkgs' nixos-rebuild tests) sets
  # nixpkgs.overlays, which runNixOSTest's read-only pkgs would reject.
  node.pkgsReadOnly = false;

  nodes.devhost =
    {
      config,
      lib,
      modulesPath,
      ...
    }:
    {
      imports = [
        "${modulesPath}/profiles/installation-device.nix"
        "${modulesPath}/profiles/base.nix"
        devhostModule
        ./vm-test-role.nix
      ];
      flyingcircus.roles.devhost.package = devhost;
      # The test channel is a store path (a file:// channel must lie under
      # an allowed prefix; store paths pass the ownership check).
      flyingcircus.roles.devhost.allowedChannelPrefixes = [ "file://${channel}" ];
      # The test evaluates purely; the first rebuild inside the VM reads the
      # real generated set.
      flyingcircus.roles.devhost.generatedSet = import ./examples/empty-generated-set.nix // {
        publicAddress = "dev.test";
      };

      # The VM rebuilds itself offline: everything its new system needs
      # must be in its store. Test nodes leave switch-to-configuration out
      # by default (it would have to be built from source), and the new
      # system installs GRUB.
      system.switch.enable = true;
      system.includeBuildDependencies = true;
      system.extraDependencies = [
        channel
        cert
        broken
        (hostConfiguration config)
        pkgs.grub2
        pkgs.stdenv
        pkgs.stdenvNoCC
      ]
      ++ lib.mapAttrsToList (name: _: provision name) containers;
      nix.settings = {
        substituters = lib.mkForce [ ];
        hashed-mirrors = null;
        connect-timeout = 1;
      };
      # Also what the role's rebuild command passes to nixos-rebuild.
      nix.nixPath = [
        "nixpkgs=${pkgs.path}"
        "nixos-config=/etc/nixos/configuration.nix"
      ];
      virtualisation = {
        cores = 2;
        memorySize = 4096;
        diskSize = 20480;
        writableStore = true;
      };
    };

  nodes.client =
    { nodes, pkgs, ... }:
    {
      environment.systemPackages = [ pkgs.curl ];
      networking.interfaces.eth1.ipv6.addresses = [
        {
          address = clientAddress6;
          prefixLength = 64;
        }
      ];
      networking.extraHosts = "${nodes.devhost.networking.primaryIPAddress} dev.test ${lib.concatStringsSep " " publicNames}";
    };

  testScript =
    { nodes, ... }:
    ''
      import json

      def served(name, text):
          client.wait_until_succeeds(f"curl -sk https://{name}/ | grep -F '{text}'", timeout=300)

      start_all()
      devhost.wait_for_unit("multi-user.target")

      with subtest("the role is active on the booted host"):
          devhost.wait_for_unit("nginx.service")
          devhost.succeed("grep -F '\"public_address\":\"dev.test\"' /etc/devhost/devhost.hcl")
          devhost.succeed("test $(sysctl -n fs.inotify.max_user_instances) -ge 512")
          devhost.succeed("systemctl list-timers | grep devhost-cleanup")

      with subtest("the host can rebuild itself, as devhost does"):
          devhost.succeed("nixos-generate-config")
          devhost.copy_from_host("${hostConfiguration nodes.devhost}", "/etc/nixos/configuration.nix")
          devhost.succeed("nixos-rebuild switch >&2")

      with subtest("two containers with aliases from a file:// channel"):
      ${pyBlock ensureAll}
          listed = json.loads(devhost.succeed("devhost list --json"))
          assert sorted(c["name"] for c in listed) == ["web1", "web2"], listed

      with subtest("the client reaches every name through nginx"):
      ${pyBlock serveAll}

      with subtest("a container has IPv6 and reaches the client's IPv6 address"):
          st = json.loads(devhost.succeed("devhost status web1 --json"))
          addr6 = st["address6"]
          assert addr6.startswith("fd00:dead:beef::"), st
          names = devhost.succeed("getent ahosts web1")
          assert addr6 in names and st["address"] in names, names
          devhost.succeed(f"ping -6 -c1 -W5 {addr6} >&2")
          devhost.succeed("nixos-container run web1 -- ping -6 -c1 -W5 ${clientAddress6} >&2")

      with subtest("a broken provision.nix fails alone"):
          out = devhost.fail("su - alice -c 'sudo devhost ensure web3 --channel file://${channel} --provision-nix - < ${broken}' 2>&1")
          assert "services.nginx.enable" in out, out
          served("www.web1.dev.test", "hello from web1")
          served("www.web2.dev.test", "hello from web2")
          assert "web3" not in devhost.succeed("nixos-container list")

      with subtest("destroy removes one container, the other keeps serving"):
          devhost.succeed("su - alice -c 'sudo devhost destroy web2' >&2")
          devhost.wait_until_fails("nixos-container status web2")
          client.fail("curl -sk https://www.web2.dev.test/ | grep -F 'hello from web2'")
          served("www.web1.dev.test", "hello from web1")

      with subtest("cleanup stops an old container, and destroys it later"):
          devhost.succeed("devhost cleanup --now $(date -u -d '+8 days' +%Y-%m-%dT%H:%M:%SZ) >&2")
          devhost.wait_until_succeeds("nixos-container status web1 | grep -x down")
          assert json.loads(devhost.succeed("devhost list --json"))[0]["state"] == "stopped"
          devhost.succeed("devhost cleanup --now $(date -u -d '+31 days' +%Y-%m-%dT%H:%M:%SZ) >&2")
          assert json.loads(devhost.succeed("devhost list --json")) == []
          devhost.fail("nixos-container status web1")
    '';
}
