# NixOS VM test of a whole devhost: the module on a NixOS host, two
# containers with aliases built from a local file:// channel, a client that
# reaches them through nginx by their public names, destroy, a broken
# provision.nix that fails alone, and cleanup (stop, then destroy).
#
# It needs KVM and nixpkgs (run by `nix flake check` as checks.<system>.devhost-vm,
# devhost-vm-http01 and devhost-vm-dns01). devhost rebuilds the host with
# nixos-rebuild inside the VM, so the VM holds the build dependencies of its
# own system (as nixpkgs' nixos-rebuild tests do).
#
# With a challenge the certificates come from pebble, the ACME test server,
# as in nixpkgs' own ACME tests (nixos/tests/acme.nix): the `acme` node runs
# pebble (nixos/tests/common/acme/server, its HTTPS trusted through the
# test CA), the `dnsserver` node runs pebble-challtestsrv, which answers
# every name with the devhost's address (http-01 validation reaches the
# host's nginx) and serves the TXT records lego's `exec` provider sets
# through its HTTP API (dns-01). The client trusts pebble's own root, read
# from pebble's management API, and checks every name's certificate.
{
  pkgs,
  devhost,
  devhostModule,
  # null: ACME off, every name on the self-signed certificate; "http-01" or
  # "dns-01": certificates from pebble with that challenge.
  challenge ? null,
}:
assert pkgs.lib.elem challenge [
  null
  "http-01"
  "dns-01"
];
let
  lib = pkgs.lib;
  acme = challenge != null;
  dns01 = challenge == "dns-01";

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
  # dns-01: a container without aliases ensured after the others, on the
  # wildcard certificate the moment ensure returns.
  lateContainer = "web4";
  namesOf = name: aliases: [ "${name}.dev.test" ] ++ map (a: "${a}.${name}.dev.test") aliases;
  containerNames = lib.concatLists (lib.mapAttrsToList namesOf containers);
  publicNames = containerNames ++ lib.optional dns01 "${lateContainer}.dev.test";

  # An IPv6 address of the client, beside the test network's own: a
  # container reaches it through the host's NAT66.
  clientAddress6 = "2001:db8:1::c";

  # lego's `exec` DNS provider (dns-01): `present|cleanup FQDN VALUE`, the
  # TXT record set and cleared through pebble-challtestsrv's HTTP API.
  legoExecEnv =
    nodes:
    let
      api = "http://${nodes.dnsserver.networking.primaryIPAddress}:8055";
      script = pkgs.writeShellScript "lego-challtestsrv" ''
        set -eu
        if [ "$1" = present ]; then
          ${pkgs.curl}/bin/curl -sSf --data "{\"host\": \"$2\", \"value\": \"$3\"}" ${api}/set-txt
        else
          ${pkgs.curl}/bin/curl -sSf --data "{\"host\": \"$2\"}" ${api}/clear-txt
        fi
      '';
    in
    pkgs.writeText "lego-challtestsrv.env" ''
      EXEC_PATH=${script}
      EXEC_POLLING_INTERVAL=1
      EXEC_PROPAGATION_TIMEOUT=1
      EXEC_SEQUENCE_INTERVAL=1
    '';

  # What the mode sets on the host, as plain data: the node imports it, and
  # the configuration the VM rebuilds itself from has it rendered in (or the
  # first rebuild would drop the ACME server, its CA and the resolver).
  modeSettings =
    nodes:
    if !acme then
      { flyingcircus.roles.devhost.acme.enable = false; }
    else
      let
        ca = nodes.acme.test-support.acme;
      in
      {
        flyingcircus.roles.devhost.acme = {
          enable = true;
          acceptTerms = true;
          email = "admin@dev.test";
          server = "https://${ca.caDomain}/dir";
          inherit challenge;
        }
        // lib.optionalAttrs dns01 {
          dnsProvider = "exec";
          credentialsFile = "${legoExecEnv nodes}";
        };
        # lego talks to pebble over HTTPS signed by the test CA.
        security = {
          pki.certificateFiles = [ "${ca.caCert}" ];
        }
        # challtestsrv is no real DNS hierarchy: lego's check for the TXT
        # record at the zone's authoritative servers would never pass (as
        # in nixpkgs' tests).
        // lib.optionalAttrs dns01 { acme.defaults.dnsPropagationCheck = false; };
        networking.nameservers = [ nodes.dnsserver.networking.primaryIPAddress ];
        networking.extraHosts = "${nodes.acme.networking.primaryIPAddress} ${ca.caDomain}\n";
      };

  # The set the node boots with. With ACME it already holds the status
  # page's certificate (the one the real set names the same), so that the
  # booted system has NixOS' ACME units and lego in its store: the VM
  # rebuilds itself offline.
  bootSet =
    import ./examples/empty-generated-set.nix
    // {
      publicAddress = "dev.test";
    }
    // lib.optionalAttrs acme {
      virtualHosts."dev.test" = {
        forceSSL = true;
        locations."/".return = "200 'devhost booted\n'";
      }
      // (if dns01 then { useACMEHost = "dev.test"; } else { enableACME = true; });
      certs = lib.optionalAttrs dns01 {
        "dev.test" = {
          domain = "dev.test";
          extraDomainNames = [ "*.dev.test" ];
        };
      };
    };

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
    nodes: node:
    pkgs.writeText "configuration.nix" ''
      { lib, ... }:
      {
        imports = [
          ./hardware-configuration.nix
          <nixpkgs/nixos/modules/testing/test-instrumentation.nix>
          ${../nixos-module}
          ${./vm-test-role.nix}
          ${lib.generators.toPretty { multiline = false; } (modeSettings nodes)}
        ]
        # A change of the role's settings that a subtest switches to while
        # the VM runs (a host-wide limit), in a file beside this one.
        ++ lib.optional (builtins.pathExists ./devhost-test-local.nix) ./devhost-test-local.nix;
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
      map (host: ''served("${host}", "hello from ${name}")'') (namesOf name aliases)
    ) containers
  );
in
pkgs.testers.runNixOSTest {
  name = if acme then "devhost-${lib.replaceStrings [ "-" ] [ "" ] challenge}" else "devhost";

  # installation-device.nix (as in nixpkgs' nixos-rebuild tests) sets
  # nixpkgs.overlays, which runNixOSTest's read-only pkgs would reject.
  node.pkgsReadOnly = false;

  nodes.devhost =
    {
      config,
      lib,
      modulesPath,
      nodes,
      ...
    }:
    {
      imports = [
        "${modulesPath}/profiles/installation-device.nix"
        "${modulesPath}/profiles/base.nix"
        devhostModule
        ./vm-test-role.nix
        (modeSettings nodes)
      ];
      flyingcircus.roles.devhost.package = devhost;
      # The test channel is a store path (a file:// channel must lie under
      # an allowed prefix; store paths pass the ownership check).
      flyingcircus.roles.devhost.allowedChannelPrefixes = [ "file://${channel}" ];
      # The test evaluates purely; the first rebuild inside the VM reads the
      # real generated set.
      flyingcircus.roles.devhost.generatedSet = bootSet;

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
        (hostConfiguration nodes config)
        pkgs.grub2
        pkgs.stdenv
        pkgs.stdenvNoCC
      ]
      ++ lib.mapAttrsToList (name: _: provision name) containers
      ++ lib.optional dns01 (provision lateContainer);
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


  # pebble and its challenge test server, with ACME only (as in nixpkgs'
  # nixos/tests/acme.nix).
  imports = lib.optional acme {
    nodes.acme =
      { nodes, ... }:
      {
        imports = [ "${pkgs.path}/nixos/tests/common/acme/server" ];
        networking.nameservers = lib.mkForce [ nodes.dnsserver.networking.primaryIPAddress ];
      };
    nodes.dnsserver =
      { nodes, ... }:
      {
        networking.firewall.allowedTCPPorts = [
          53
          8055
        ];
        networking.firewall.allowedUDPPorts = [ 53 ];
        systemd.services.pebble-challtestsrv = {
          description = "pebble's challenge test server: every name, and TXT records set over HTTP";
          wantedBy = [ "network.target" ];
          serviceConfig = {
            ExecStart = "${pkgs.pebble}/bin/pebble-challtestsrv -dns01 :53 -defaultIPv6 '' -defaultIPv4 ${nodes.devhost.networking.primaryIPAddress}";
            AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
          };
        };
      };
    # The client reaches pebble's management API (HTTPS signed by the test
    # CA) for pebble's root.
    nodes.client =
      { nodes, ... }:
      {
        environment.systemPackages = [ pkgs.openssl ];
        networking.extraHosts = "${nodes.acme.networking.primaryIPAddress} ${nodes.acme.test-support.acme.caDomain}\n";
        security.pki.certificateFiles = [ nodes.acme.test-support.acme.caCert ];
      };
  };

  testScript =
    { nodes, ... }:
    ''
      import json

      ${if acme then ''
        # Certificates from pebble: the client verifies them with pebble's root.
        curl = "curl -sS --cacert /tmp/pebble.pem"
      '' else ''
        # The self-signed certificate: the client does not verify it.
        curl = "curl -sk"
      ''}
      def served(name, text):
          client.wait_until_succeeds(f"{curl} https://{name}/ | grep -F '{text}'", timeout=300)

      ${if acme then ''
        # pebble and the DNS server first: the devhost asks for its status
        # page's certificate when it boots.
        dnsserver.start()
        acme.start()
        client.start()
        dnsserver.wait_for_unit("pebble-challtestsrv.service")
        acme.systemctl("start network-online.target")
        acme.wait_for_unit("network-online.target")
        acme.wait_for_unit("pebble.service")
        # pebble makes a new root each start; its management API serves it.
        client.wait_until_succeeds("curl -sSf https://${nodes.acme.test-support.acme.caDomain}:15000/roots/0 > /tmp/pebble.pem", timeout=120)
        devhost.start()
      '' else ''
        start_all()
      ''}
      devhost.wait_for_unit("multi-user.target")

      with subtest("the role is active on the booted host"):
          devhost.wait_for_unit("nginx.service")
          devhost.succeed("grep -F '\"public_address\":\"dev.test\"' /etc/devhost/devhost.hcl")
          devhost.succeed("test $(sysctl -n fs.inotify.max_user_instances) -ge 512")
          devhost.succeed("systemctl list-timers | grep devhost-cleanup")

      with subtest("the host can rebuild itself, as devhost does"):
          devhost.succeed("nixos-generate-config")
          devhost.copy_from_host("${hostConfiguration nodes nodes.devhost}", "/etc/nixos/configuration.nix")
          devhost.succeed("nixos-rebuild switch >&2")

      with subtest("two containers with aliases from a file:// channel"):
      ${pyBlock ensureAll}
          listed = json.loads(devhost.succeed("devhost list --json"))
          assert sorted(c["name"] for c in listed) == ["web1", "web2"], listed

      with subtest("a container runs as an instance of NixOS' container@ template"):
          unit = devhost.succeed("systemctl show -p FragmentPath -p DropInPaths -p TimeoutStartUSec -p TasksMax container@web1.service")
          assert "FragmentPath=/etc/systemd/system/container@.service" in unit, unit
          assert "/container@web1.service.d/devhost.conf" in unit, unit
          assert "TimeoutStartUSec=5min" in unit, unit
          assert "TasksMax=2048" in unit, unit
          wants = devhost.succeed("systemctl show -p Wants --value machines.target")
          assert "container@web1.service" in wants, wants

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

      with subtest("a host-wide limit change restarts the running containers on apply"):
          # The host's switch leaves running instances of NixOS' container@
          # template as they are; devhost apply renders the new drop-ins,
          # rebuilds and restarts the containers they changed.
          since = "systemctl show -p ActiveEnterTimestampMonotonic --value container@web1.service"
          before = devhost.succeed(since).strip()
          devhost.succeed("echo '{ lib, ... }: { flyingcircus.roles.devhost.limits.tasksMax = lib.mkForce 1024; }' > /etc/nixos/devhost-test-local.nix")
          devhost.succeed("nixos-rebuild switch >&2")
          devhost.succeed("grep -F '1024' /etc/devhost/devhost.hcl")
          applied = json.loads(devhost.succeed("devhost apply --json"))
          assert sorted(applied["restarted"]) == ["web1", "web2"], applied
          devhost.wait_for_unit("container@web1.service")
          unit = devhost.succeed("systemctl show -p TasksMax container@web1.service")
          assert "TasksMax=1024" in unit, unit
          assert devhost.succeed(since).strip() != before, "web1 was not restarted"
          served("www.web1.dev.test", "hello from web1")
          assert json.loads(devhost.succeed("devhost apply --json"))["restarted"] == []

      ${lib.optionalString acme ''
        with subtest("every name has a certificate from pebble"):
            client.wait_until_succeeds(f"{curl} -o /dev/null https://dev.test/", timeout=300)
            for name in ${builtins.toJSON containerNames}:
                client.wait_until_succeeds(f"{curl} -o /dev/null https://{name}/", timeout=300)
                issuer = client.succeed(f"openssl s_client -servername {name} -connect {name}:443 < /dev/null 2>/dev/null | openssl x509 -noout -issuer")
                assert "pebble" in issuer.lower(), (name, issuer)
      ''}
      ${lib.optionalString dns01 ''
        with subtest("dns-01: a new container is on HTTPS the moment ensure returns"):
            devhost.succeed("${ensure lateContainer [ ]}")
            # No wait: the wildcard certificate already covers the name.
            client.succeed(curl + " -o /dev/null https://${lateContainer}.dev.test/")
            served("${lateContainer}.dev.test", "hello from ${lateContainer}")
            devhost.succeed("su - alice -c 'sudo devhost destroy ${lateContainer}' >&2")
            devhost.wait_until_fails("nixos-container status ${lateContainer}")
      ''}
      with subtest("a broken provision.nix fails alone"):
          out = devhost.fail("su - alice -c 'sudo devhost ensure web3 --channel file://${channel} --provision-nix - < ${broken}' 2>&1")
          assert "services.nginx.enable" in out, out
          served("www.web1.dev.test", "hello from web1")
          served("www.web2.dev.test", "hello from web2")
          assert "web3" not in devhost.succeed("nixos-container list")

      with subtest("destroy removes one container, the other keeps serving"):
          devhost.succeed("su - alice -c 'sudo devhost destroy web2' >&2")
          devhost.wait_until_fails("nixos-container status web2")
          client.fail(f"{curl} https://www.web2.dev.test/ | grep -F 'hello from web2'")
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
