# Typed stand-ins for the NixOS options the devhost module sets, so that the
# module can be evaluated with nixpkgs' lib alone (lib.evalModules), without
# all of NixOS. The types follow nixpkgs (nixos-containers.nix, the nginx,
# acme, sudo, systemd, networking and users modules) and are no wider than
# there: a definition NixOS would reject is rejected here too, so a wrong
# type in the module fails the tests. Options the module does not set are
# left out; defining one of them is an error ("option does not exist").
{ config, lib, ... }:
let
  types = lib.types;
  opt =
    type: default:
    lib.mkOption {
      inherit type default;
    };
  req = type: lib.mkOption { inherit type; };
  # The default of a package option: recorded, never built.
  standIn = name: {
    type = "derivation";
    name = "${name}-stand-in";
    outPath = "/nix/store/00000000000000000000000000000000-${name}-stand-in";
  };

  # nixos/modules/services/web-servers/nginx/location-options.nix (subset)
  location = types.submodule {
    options = {
      proxyPass = opt (types.nullOr types.str) null;
      proxyWebsockets = opt types.bool false;
      recommendedProxySettings = opt types.bool false;
      root = opt (types.nullOr types.path) null;
      alias = opt (types.nullOr types.path) null;
      index = opt (types.nullOr types.str) null;
      tryFiles = opt (types.nullOr types.str) null;
      return = opt (types.nullOr (types.oneOf [
        types.str
        types.int
      ])) null;
      extraConfig = opt types.lines "";
      priority = opt types.int 1000;
    };
  };

  # nixos/modules/services/web-servers/nginx/vhost-options.nix (subset)
  vhost = types.submodule {
    options = {
      serverName = opt (types.nullOr types.str) null;
      serverAliases = opt (types.listOf types.str) [ ];
      forceSSL = opt types.bool false;
      addSSL = opt types.bool false;
      onlySSL = opt types.bool false;
      rejectSSL = opt types.bool false;
      enableACME = opt types.bool false;
      useACMEHost = opt (types.nullOr types.str) null;
      acmeRoot = opt (types.nullOr types.str) "/var/lib/acme/acme-challenge";
      sslCertificate = opt (types.nullOr types.path) null;
      sslCertificateKey = opt (types.nullOr types.path) null;
      http2 = opt types.bool true;
      default = opt types.bool false;
      root = opt (types.nullOr types.path) null;
      basicAuthFile = opt (types.nullOr types.path) null;
      extraConfig = opt types.lines "";
      locations = opt (types.attrsOf location) { };
    };
  };

  # nixos/modules/virtualisation/nixos-containers.nix (subset)
  container = types.submodule {
    options = {
      path = req types.path;
      privateNetwork = opt types.bool false;
      hostAddress = opt (types.nullOr types.str) null;
      localAddress = opt (types.nullOr types.str) null;
      hostAddress6 = opt (types.nullOr types.str) null;
      localAddress6 = opt (types.nullOr types.str) null;
      autoStart = opt types.bool false;
      restartIfChanged = opt types.bool true;
      timeoutStartSec = opt types.str "1min";
      ephemeral = opt types.bool false;
    };
  };

  # nixos/lib/systemd-unit-options.nix: unit settings (subset)
  unitValue = types.oneOf [
    types.bool
    types.int
    types.str
    (types.listOf types.str)
  ];
  unitCommon = {
    description = opt types.str "";
    after = opt (types.listOf types.str) [ ];
    before = opt (types.listOf types.str) [ ];
    wants = opt (types.listOf types.str) [ ];
    requires = opt (types.listOf types.str) [ ];
    wantedBy = opt (types.listOf types.str) [ ];
    unitConfig = opt (types.attrsOf unitValue) { };
  };
  service = types.submodule {
    options = unitCommon // {
      path = opt (types.listOf (types.either types.package types.str)) [ ];
      environment = opt (types.attrsOf (types.nullOr (types.either types.str types.path))) { };
      serviceConfig = opt (types.attrsOf unitValue) { };
      script = opt types.lines "";
      startAt = opt (types.either types.str (types.listOf types.str)) [ ];
    };
  };
  timer = types.submodule {
    options = unitCommon // {
      timerConfig = req (types.attrsOf unitValue);
    };
  };

  # nixos/modules/security/sudo.nix: extraRules
  sudoRule = types.submodule {
    options = {
      users = opt (types.listOf (types.either types.str types.int)) [ ];
      groups = opt (types.listOf (types.either types.str types.int)) [ ];
      host = opt types.str "ALL";
      runAs = opt types.str "ALL:ALL";
      commands = req (
        types.listOf (
          types.either types.str (
            types.submodule {
              options = {
                command = req types.str;
                options = opt (types.listOf (
                  types.enum [
                    "NOPASSWD"
                    "PASSWD"
                    "NOEXEC"
                    "EXEC"
                    "SETENV"
                    "NOSETENV"
                    "LOG_INPUT"
                    "NOLOG_INPUT"
                    "LOG_OUTPUT"
                    "NOLOG_OUTPUT"
                    "MAIL"
                    "NOMAIL"
                    "FOLLOW"
                    "NOFLLOW"
                    "INTERCEPT"
                    "NOINTERCEPT"
                  ]
                )) [ ];
              };
            }
          )
        )
      );
    };
  };

  etcFile = types.submodule {
    options = {
      text = opt (types.nullOr types.lines) null;
      source = opt (types.nullOr types.path) null;
      mode = opt types.str "symlink";
      user = opt types.str "+0";
      group = opt types.str "+0";
    };
  };
in
{
  options = {
    # nixos/modules/misc/assertions.nix
    assertions = opt (types.listOf (
      types.submodule {
        options = {
          assertion = req types.bool;
          message = req types.str;
        };
      }
    )) [ ];
    warnings = opt (types.listOf types.str) [ ];

    environment.etc = opt (types.attrsOf etcFile) { };
    environment.systemPackages = opt (types.listOf types.package) [ ];

    users.groups = opt (types.attrsOf (
      types.submodule {
        options = {
          gid = opt (types.nullOr types.int) null;
          members = opt (types.listOf types.str) [ ];
        };
      }
    )) { };

    boot.enableContainers = opt types.bool false;
    boot.kernel.sysctl = opt (types.attrsOf (
      types.nullOr (
        types.oneOf [
          types.bool
          types.str
          types.int
        ]
      )
    )) { };
    containers = opt (types.attrsOf container) { };

    networking.hostName = opt types.str "nixos";
    networking.hosts = opt (types.attrsOf (types.listOf types.str)) { };
    networking.nat = {
      enable = opt types.bool false;
      internalInterfaces = opt (types.listOf types.str) [ ];
      externalInterface = opt (types.nullOr types.str) null;
      # NAT66 (NixOS 23.05).
      enableIPv6 = opt types.bool false;
      internalIPv6s = opt (types.listOf types.str) [ ];
    };
    networking.firewall.allowedTCPPorts = opt (types.listOf types.port) [ ];

    services.nginx = {
      enable = opt types.bool false;
      recommendedProxySettings = opt types.bool false;
      recommendedTlsSettings = opt types.bool false;
      recommendedOptimisation = opt types.bool false;
      recommendedGzipSettings = opt types.bool false;
      serverNamesHashBucketSize = opt (types.nullOr types.ints.positive) null;
      serverNamesHashMaxSize = opt (types.nullOr types.ints.positive) null;
      proxyTimeout = opt types.str "60s";
      clientMaxBodySize = opt types.str "10m";
      group = opt types.str "nginx";
      virtualHosts = opt (types.attrsOf vhost) { };
    };

    security.acme = {
      acceptTerms = opt types.bool false;
      defaults = {
        email = opt (types.nullOr types.str) null;
        server = opt (types.nullOr types.str) null;
      };
      # nixos/modules/security/acme (subset, NixOS 21.05 and later).
      certs = opt (types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options = {
              domain = opt types.str name;
              extraDomainNames = opt (types.listOf types.str) [ ];
              dnsProvider = opt (types.nullOr types.str) null;
              credentialsFile = opt (types.nullOr types.path) null;
              group = opt types.str "acme";
            };
          }
        )
      )) { };
    };

    security.sudo.extraRules = opt (types.listOf sudoRule) [ ];

    # nixos/modules/misc/version.nix: NixOS' default is the release of
    # the nixpkgs the host is built from.
    system.stateVersion = opt types.str lib.trivial.release;

    nix.nixPath = opt (types.listOf types.str) [ ];
    nix.package = opt types.package (standIn "nix");
    systemd.package = opt types.package (standIn "systemd");

    systemd.services = opt (types.attrsOf service) { };
    systemd.targets = opt (types.attrsOf (types.submodule { options = unitCommon; })) { };
    systemd.timers = opt (types.attrsOf timer) { };
    systemd.packages = opt (types.listOf types.package) [ ];
    systemd.tmpfiles.rules = opt (types.listOf types.str) [ ];
  };

  # nixos/modules/virtualisation/nixos-containers.nix: the generic
  # container@ template that boot.enableContainers declares (what the
  # module reads of it), in the directory newer NixOS picks by state version.
  config = lib.mkIf config.boot.enableContainers {
    systemd.services."container@" = {
      description = "Container '%i'";
      serviceConfig.EnvironmentFile = "-/etc/${
        lib.optionalString (lib.versionAtLeast config.system.stateVersion "22.05") "nixos-"
      }containers/%i.conf";
    };
  };
}
