# The devhost role: many short-lived development deployments as NixOS
# containers on one machine, with public HTTPS names and daily cleanup.
#
# This file takes one argument before it is a module (lib.modules.importApply):
# `defaultPackage`, a function from `pkgs` to the devhost package, or null.
# The flake passes its own package; ./default.nix passes null, and the
# package then defaults to `pkgs.devhost` (from the flake's overlay).
#
# The containers, virtual hosts and hosts entries are not declared here: the
# devhost program writes them as plain data (the *generated set*, by default
# /var/lib/devhost/generated/default.nix) and this module reads that data in
# `config`. It is not an `imports` entry, since imports cannot depend on
# config, and reading it keeps the host evaluation independent of what
# developers put into their containers (ARCHITECTURE decisions 1 and 6).
{
  defaultPackage ? null,
}:
{
  config,
  options,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.flyingcircus.roles.devhost;
  opt = "flyingcircus.roles.devhost";
  types = lib.types;

  # --- small parsers for the assertions ------------------------------------

  # "10.233.0.1" -> 182910977; null when not a dotted quad.
  ipv4ToInt =
    s:
    let
      m = builtins.match "([0-9]{1,3})\\.([0-9]{1,3})\\.([0-9]{1,3})\\.([0-9]{1,3})" s;
      octets = map lib.toInt m;
    in
    if m == null || lib.any (o: o > 255) octets then
      null
    else
      lib.foldl' (acc: o: acc * 256 + o) 0 octets;

  # "10.233.0.0/16" -> { base = <int>; length = 16; }, or null.
  parseNetwork =
    s:
    let
      m = builtins.match "([0-9.]+)/([0-9]{1,2})" s;
      base = if m == null then null else ipv4ToInt (builtins.elemAt m 0);
      length = if m == null then 33 else lib.toInt (builtins.elemAt m 1);
    in
    if base == null || length > 32 then null else { inherit base length; };

  pow2 = n: if n == 0 then 1 else 2 * pow2 (n - 1);

  inNetwork =
    net: addr:
    let
      size = pow2 (32 - net.length);
    in
    addr / size == net.base / size;

  # Durations as devhost reads them: "7d", "36h", "1d12h", "90m", "300s".
  durationPattern = "([0-9]+[dhms])+";
  durationSeconds =
    s:
    let
      parts = builtins.filter builtins.isList (builtins.split "([0-9]+)([dhms])" s);
      unit = {
        d = 86400;
        h = 3600;
        m = 60;
        s = 1;
      };
    in
    lib.foldl' (acc: p: acc + lib.toInt (builtins.elemAt p 0) * unit.${builtins.elemAt p 1}) 0 parts;

  # --- the generated set ------------------------------------------------------

  emptySet = {
    version = 1;
    containers = { };
    virtualHosts = { };
    hosts = { };
    certs = { };
    services = { };
  };
  generatedFile = "${cfg.generatedDir}/default.nix";
  # A flake build evaluates purely and may not read /var/lib: that is
  # reported by an assertion below instead of an obscure "access to absolute
  # path is forbidden" error.
  pureEval = cfg.internal.pureEval;
  readGenerated =
    if cfg.generatedSet != null then
      cfg.generatedSet
    else if pureEval then
      emptySet
    else if builtins.pathExists generatedFile then
      import generatedFile
    else
      emptySet;
  generated = emptySet // readGenerated;
  # The resource limits the generated set declares, only for units of its
  # own containers and only these systemd settings.
  limitKeys = [
    "MemoryMax"
    "CPUWeight"
    "CPUQuota"
    "TasksMax"
  ];
  containerLimits =
    name:
    lib.filterAttrs (k: _: builtins.elem k limitKeys) (generated.services."container@${name}".serviceConfig or { });
  containerHostNames = lib.genAttrs (lib.concatLists (lib.attrValues generated.hosts)) (_: true);
  autoStartContainers = lib.attrNames (lib.filterAttrs (_: c: c.autoStart or false) generated.containers);

  # --- the containers as instances of NixOS' container@ template ------------
  #
  # Declaring containers.<name> one by one makes NixOS build a unit of its
  # own (with its own start scripts) per container: most of a large host's
  # evaluation. devhost runs them instead as instances of the generic
  # container@ template that boot.enableContainers declares (as
  # `nixos-container create` does): per container only the file the
  # template reads (/etc/<confDir>/NAME.conf, with the keys NixOS writes
  # for a declarative container) and a drop-in for its start timeout and
  # limits. switch-to-configuration leaves template instances alone
  # (restartIfChanged = false on the template), so devhost's lifecycle
  # stops, starts and restarts them itself.

  # NixOS' directory rule (nixos-containers.nix): /etc/nixos-containers
  # for hosts first installed with 22.05 or later, like containersDir. An
  # assertion checks it against the template's EnvironmentFile.
  confDir = if lib.versionOlder config.system.stateVersion "22.05" then "containers" else "nixos-containers";
  templateEnvironmentFile = config.systemd.services."container@".serviceConfig.EnvironmentFile or null;
  # The keys newer NixOS releases write, only where this NixOS has the
  # option behind them (and so a template that reads them).
  containerOptions = options.containers.type.getSubOptions [ ];
  # The generated set's container attributes, all of which go into the
  # conf file: an overridden template that declares anything else (a bind
  # mount, say) is refused rather than silently dropped.
  containerKeys = [
    "path"
    "privateNetwork"
    "hostAddress"
    "localAddress"
    "hostAddress6"
    "localAddress6"
    "autoStart"
    "timeoutStartSec"
  ];
  unknownContainerKeys = lib.concatLists (
    lib.mapAttrsToList (
      n: c: map (k: "${n}.${k}") (builtins.filter (k: !builtins.elem k containerKeys) (builtins.attrNames c))
    ) generated.containers
  );
  # A value of the conf file (an environment file systemd parses) or of a
  # drop-in: a path, an address, a duration or a limit, never anything
  # that could end the line, quote or expand.
  confValue =
    n: k: v:
    if builtins.isString v && builtins.match "[A-Za-z0-9./:_@+%-]+" v != null then
      v
    else
      throw "${opt}: the generated set ${generatedFile} gives container ${n} the ${k} ${builtins.toJSON v}, not a path, an address or a unit setting: run `devhost apply` to render it again.";
  line = k: v: if v == null then "" else "${k}=${v}\n";
  containerConf =
    n: c:
    let
      net = c.privateNetwork or false;
      value = k: if c ? ${k} && c.${k} != null then confValue n k c.${k} else null;
    in
    line "SYSTEM_PATH" (confValue n "path" c.path)
    + lib.optionalString (containerOptions ? copyResolvConf) (line "COPY_RESOLV_CONF" "1")
    + lib.optionalString net (
      line "PRIVATE_NETWORK" "1"
      + line "HOST_ADDRESS" (value "hostAddress")
      + line "HOST_ADDRESS6" (value "hostAddress6")
      + line "LOCAL_ADDRESS" (value "localAddress")
      + line "LOCAL_ADDRESS6" (value "localAddress6")
    )
    + lib.optionalString (containerOptions ? privateUsers) (line "PRIVATE_USERS" "no")
    + line "INTERFACES" "\"\""
    + line "MACVLANS" "\"\""
    + lib.optionalString (c.autoStart or false) (line "AUTO_START" "1")
    + line "EXTRA_NSPAWN_FLAGS" "\"\"";
  containerConfFiles = lib.mapAttrs' (
    n: c: lib.nameValuePair "${confDir}/${n}.conf" { text = containerConf n c; }
  ) generated.containers;

  # One drop-in per instance, container@NAME.service.d/devhost.conf, all
  # in one package: a systemd.services."container@NAME" would be a unit of
  # its own that shadows the template. It adds what NixOS gives a
  # declarative container's unit (the network first, its start timeout)
  # and the container's resource limits.
  dropIn =
    n: c:
    let
      limits = containerLimits n;
      timeout = c.timeoutStartSec or cfg.containerStartTimeout;
    in
    ''
      [Unit]
      Wants=network.target
      After=network.target

      [Service]
      TimeoutStartSec=${confValue n "timeoutStartSec" timeout}
    ''
    + lib.concatStrings (lib.mapAttrsToList (k: v: "${k}=${confValue n k (toString v)}\n") limits);
  dropInScript = lib.concatStrings (
    lib.mapAttrsToList (
      n: c:
      let
        dir = "etc/systemd/system/container@${n}.service.d";
      in
      ''
        mkdir -p "$out"/${lib.escapeShellArg dir}
        printf '%s' ${lib.escapeShellArg (dropIn n c)} > "$out"/${lib.escapeShellArg "${dir}/devhost.conf"}
      ''
    ) generated.containers
  );
  containerDropIns =
    pkgs.runCommand "devhost-container-units"
      {
        # Thousands of containers exceed what one environment variable holds.
        passAsFile = [
          "buildCommand"
          "script"
        ];
        script = dropInScript;
        preferLocalBuild = true;
        allowSubstitutes = false;
      }
      ''
        mkdir -p "$out"
        . "$scriptPath"
      '';

  # --- what the host configuration file says ---------------------------------

  rootPath = "PATH=/run/wrappers/bin:/run/current-system/sw/bin";
  envExe = "${pkgs.coreutils}/bin/env";
  withRootPath = argv: [
    envExe
    rootPath
  ]
  ++ argv;

  hostConfig = {
    public_address = cfg.publicAddress;
    state_dir = cfg.stateDir;
    generated_dir = cfg.generatedDir;
    profile_dir = cfg.profileDir;
    containers_dir = cfg.containersDir;
    template_dir = if cfg.templateDir == null then "" else cfg.templateDir;
    alias_proxy = cfg.enableAliasProxy;
    alias_style = cfg.aliasStyle;
    addresses = {
      network = cfg.addressPool.network;
      host_address = cfg.addressPool.hostAddress;
      network6 = cfg.addressPool.network6;
      host_address6 = cfg.addressPool.hostAddress6;
    };
    channels.allowed_prefixes = cfg.allowedChannelPrefixes;
    acme = {
      inherit (cfg.acme) enable staging;
      email = if cfg.acme.email == null then "" else cfg.acme.email;
      server = if cfg.acme.server == null then "" else cfg.acme.server;
      inherit (cfg.acme) challenge;
      dns_provider = if cfg.acme.dnsProvider == null then "" else cfg.acme.dnsProvider;
      shards = acmeShards;
    };
    cleanup = {
      enable = cfg.cleanupContainers;
      stop_after = cfg.cleanup.stopAfter;
      destroy_after = cfg.cleanup.destroyAfter;
      at = cfg.cleanup.at;
    };
    nginx = {
      server_names_hash_bucket_size = cfg.nginx.serverNamesHashBucketSize;
      server_names_hash_max_size = cfg.nginx.serverNamesHashMaxSize;
      proxy_timeout = cfg.nginx.proxyTimeout;
      client_max_body_size = cfg.nginx.clientMaxBodySize;
      inherit (config.services.nginx) group;
    };
    # null: no host default for that limit.
    limits = {
      memory_max = cfg.limits.memoryMax;
      cpu_weight = cfg.limits.cpuWeight;
      cpu_quota = cfg.limits.cpuQuota;
      tasks_max = cfg.limits.tasksMax;
    };
    compat.bootstrap_key = cfg.compatibility.bootstrapKey;
    access = {
      inherit (cfg) groups;
      admin_group = cfg.adminGroup;
      max_containers_per_user = cfg.maxContainersPerUser;
      # Names the host resolves besides its containers: a container may not
      # take one (its hosts entry would redirect the host's lookups).
      # Linear in the number of containers: their names are looked up in
      # a set, and only the few other names are deduplicated (lib.unique
      # is quadratic; before NixOS 22.05 it made 500,000 calls for 1,000
      # containers).
      reserved_names = lib.unique (
        builtins.filter (n: !(containerHostNames ? ${n})) (
          [ config.networking.hostName ] ++ lib.concatLists (lib.attrValues config.networking.hosts)
        )
      );
    };
    # devhost runs these as root through sudo, which keeps the caller's
    # PATH (NixOS sets no secure_path): every program is absolute and runs
    # through env with root's PATH, so neither it nor what it starts
    # (nixos-rebuild, nix-build's helpers) finds a program of the caller's.
    commands = {
      rebuild =
        if builtins.head cfg.rebuildCommand == envExe then cfg.rebuildCommand else withRootPath cfg.rebuildCommand;
      nix_build = withRootPath [ "${config.nix.package}/bin/nix-build" ];
      nix_env = withRootPath [ "${config.nix.package}/bin/nix-env" ];
      nix_instantiate = withRootPath [ "${config.nix.package}/bin/nix-instantiate" ];
      nixos_container = withRootPath [ "/run/current-system/sw/bin/nixos-container" ];
      systemctl = withRootPath [ "${config.systemd.package}/bin/systemctl" ];
      rebuild_batch_window = cfg.rebuildBatchWindow;
    };
  };

  # inotify grows with the number of containers (each runs its own systemd
  # and journald): the default 128 instances run out near 20 containers.
  inotifyInstances = lib.max 512 (cfg.capacity * 16);
  inotifyWatches = lib.max 16384 (cfg.capacity * 4096);

  # dns-01: one wildcard shard slot per 100 containers of capacity (a slot
  # holds up to 99 *.<name>.<publicAddress> names per certificate, and only
  # containers with nested aliases need one).
  dns01 = cfg.acme.enable && cfg.acme.challenge == "dns-01";
  acmeShards = if cfg.acme.shards != null then cfg.acme.shards else lib.max 1 ((cfg.capacity + 99) / 100);

  stagingServer = "https://acme-staging-v02.api.letsencrypt.org/directory";
  acmeServer =
    if cfg.acme.server != null then
      cfg.acme.server
    else if cfg.acme.staging then
      stagingServer
    else
      null;

  # Without ACME every virtual host serves this pair (the generator's
  # SelfSignedCertPath/SelfSignedKeyPath): one certificate for the public
  # address and its first-level wildcard, made once and again when the
  # public address changes.
  selfSignedDir = "${cfg.stateDir}/selfsigned";
  publicName = if cfg.publicAddress == null then "localhost" else cfg.publicAddress;

  # nginx' server_names_hash_bucket_size must hold the longest server name,
  # <alias>.<name>.<publicAddress> with a 63-character alias and an
  # 11-character container name: nginx stores a name with a pointer and its
  # length, 8-byte aligned, and a bucket ends with one more pointer
  # (ngx_hash_init). devhost computes the same (names.NginxBucketSize) and
  # checks every name against the configured size at ensure.
  longestServerName = 63 + 1 + 11 + 1 + builtins.stringLength publicName;
  bucketNeeded = 8 + (longestServerName + 2 + 7) / 8 * 8 + 8;
  derivedBucketSize = lib.findFirst (b: b >= bucketNeeded) 65536 (map pow2 (lib.range 5 16));
  selfSignedNames = [
    publicName
    "*.${publicName}"
  ];
  nginxGroup = config.services.nginx.group;
  selfSignedScript = ''
    dir=${lib.escapeShellArg selfSignedDir}
    names=${lib.escapeShellArg (lib.concatStringsSep " " selfSignedNames)}
    if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ] && [ "$(cat "$dir/names" 2>/dev/null)" = "$names" ]; then
      exit 0
    fi
    mkdir -p "$dir"
    chgrp ${lib.escapeShellArg nginxGroup} "$dir"
    chmod 0750 "$dir"
    rm -f "$dir/key.pem.new" "$dir/cert.pem.new"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
      -subj ${lib.escapeShellArg "/CN=${publicName}"} \
      -addext ${lib.escapeShellArg "subjectAltName=${lib.concatMapStringsSep "," (n: "DNS:${n}") selfSignedNames}"} \
      -keyout "$dir/key.pem.new" -out "$dir/cert.pem.new"
    chgrp ${lib.escapeShellArg nginxGroup} "$dir/key.pem.new" "$dir/cert.pem.new"
    chmod 0640 "$dir/key.pem.new"
    chmod 0644 "$dir/cert.pem.new"
    mv -f "$dir/key.pem.new" "$dir/key.pem"
    mv -f "$dir/cert.pem.new" "$dir/cert.pem"
    printf '%s' "$names" > "$dir/names"
  '';

  exe = "${cfg.package}/bin/devhost";
  # What the groups may run as root: every command the laptop side
  # (devhost up, devhost reserve --devhost), the batou plugin and batou
  # 2.3–2.5's provisioner run on the devhost, and nothing an administrator
  # alone may do (cleanup, apply, render, import-legacy). Each subcommand
  # is listed with and without arguments, since sudoers' "*" does not match
  # an empty argument list.
  userCommands = [
    "ensure"
    "destroy"
    "keep"
    "share"
    "unshare"
    "protect"
    "status"
  ];
  # Commands allowed with exactly these arguments: `reserve` also has
  # laptop-side flags (--devhost, --ssh names the ssh program), which as
  # root would run a program of the caller's choosing.
  userExactCommands = [
    "reserve"
    "reserve --json"
  ];
  # batou 2.3–2.5 run `sudo fc-build-dev-container ensure|destroy …`.
  compatCommands = [
    "ensure"
    "destroy"
  ];
  compatExe = "${cfg.package}/bin/fc-build-dev-container";
  sudoCommand = command: {
    inherit command;
    options = [ "NOPASSWD" ];
  };

  networkOK = parseNetwork cfg.addressPool.network != null;
  # Containers' IPv6 goes beyond the host (NAT66 or routed).
  ipv6Forward = cfg.addressPool.network6 != null && cfg.ipv6.outbound != "none";
  hostAddressInt = if cfg.addressPool.hostAddress == null then null else ipv4ToInt cfg.addressPool.hostAddress;
  stopSeconds = durationSeconds cfg.cleanup.stopAfter;
  destroySeconds = durationSeconds cfg.cleanup.destroyAfter;
in
{
  options.flyingcircus.roles.devhost = {
    enable = lib.mkEnableOption ''
      the devhost role: development deployments of batou environments as
      NixOS containers with public HTTPS names, managed by the `devhost`
      command'';

    package = lib.mkOption {
      type = types.package;
      default =
        if defaultPackage != null then
          defaultPackage pkgs
        else
          pkgs.devhost or (throw ''
            ${opt}.package: no devhost package found. Import the module from
            the devhost flake (devhost.nixosModules.default), add the flake's
            overlay (devhost.overlays.default) so that `pkgs.devhost` exists,
            or set ${opt}.package.'');
      defaultText = lib.literalExpression "devhost.packages.\${system}.default (from the flake), else pkgs.devhost";
      description = "The devhost package (provides `devhost` and `fc-build-dev-container`).";
    };

    publicAddress = lib.mkOption {
      type = types.nullOr (
        types.strMatching "([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?"
      );
      default = null;
      example = "dev.example.com";
      description = ''
        The domain under which containers are public: `NAME.<publicAddress>`
        and, with {option}`${opt}.enableAliasProxy`, `ALIAS.NAME.<publicAddress>`.
        Its DNS (and a wildcard `*.<publicAddress>` plus `*.*.<publicAddress>`)
        must point at this host. Required when the role is enabled.
      '';
    };

    enableAliasProxy = lib.mkOption {
      type = types.bool;
      default = true;
      description = ''
        Serve the containers' aliases as `ALIAS.NAME.<publicAddress>` through
        nginx with HTTPS. The old container devhost role defaulted to this
        (it was off only on its testing hosts); so does devhost.
      '';
    };

    cleanupContainers = lib.mkOption {
      type = types.bool;
      default = true;
      description = ''
        Run `devhost cleanup` daily: containers not deployed for
        {option}`${opt}.cleanup.stopAfter` are stopped, after
        {option}`${opt}.cleanup.destroyAfter` destroyed (unless kept).
      '';
    };

    stateDir = lib.mkOption {
      type = types.strMatching "/[^[:cntrl:]]*";
      default = "/var/lib/devhost";
      description = "Where devhost keeps its registry (`containers/NAME.hcl`), locks and logs.";
    };

    generatedDir = lib.mkOption {
      type = types.strMatching "/[^[:cntrl:]]*";
      default = "${cfg.stateDir}/generated";
      defaultText = lib.literalExpression ''"''${config.${opt}.stateDir}/generated"'';
      description = ''
        The generated set: Nix data written by devhost (`devhost apply`) and
        read by this module from `<generatedDir>/default.nix` when it exists.
        Outside the host's configuration source on purpose; a flake-based
        host must be rebuilt with `--impure` to read it.
      '';
    };

    internal.pureEval = lib.mkOption {
      type = types.bool;
      internal = true;
      visible = false;
      default = !(builtins ? currentSystem);
      defaultText = lib.literalExpression "!(builtins ? currentSystem)";
      description = ''
        Whether this evaluation is pure (a flake build without `--impure`),
        in which case the generated set cannot be read. Detected; the tests
        set it to exercise the assertion, since a pure evaluation cannot
        load the test's files.
      '';
    };

    generatedSet = lib.mkOption {
      type = types.nullOr types.raw;
      default = null;
      example = lib.literalExpression "import ./generated";
      description = ''
        The generated set as a value, instead of reading
        `<generatedDir>/default.nix`. For checks and tests that evaluate
        purely; leave it `null` on a real devhost.
      '';
    };

    profileDir = lib.mkOption {
      type = types.strMatching "/[^[:cntrl:]]*";
      default = "/nix/var/nix/profiles/per-container";
      description = ''
        Where the containers' system profiles live (`<profileDir>/NAME/system`);
        NixOS' container units mount this directory, so change it only together with them.
      '';
    };

    containersDir = lib.mkOption {
      type = types.strMatching "/[^[:cntrl:]]*";
      # NixOS' own rule (nixos-containers.nix): hosts first installed
      # before 22.05 keep /var/lib/containers, so an old role's host that
      # is migrated keeps finding its containers there.
      default = if lib.versionOlder config.system.stateVersion "22.05" then "/var/lib/containers" else "/var/lib/nixos-containers";
      defaultText = lib.literalExpression ''if lib.versionOlder config.system.stateVersion "22.05" then "/var/lib/containers" else "/var/lib/nixos-containers"'';
      description = ''
        Where NixOS keeps the containers' root directories
        (`<containersDir>/NAME`): devhost reads a container's SSH host key
        there and removes the directory when the container is destroyed.
        The default is the directory NixOS' container units use, which
        depends on {option}`system.stateVersion` as it does in NixOS;
        change it only together with them.
      '';
    };

    templateDir = lib.mkOption {
      type = types.nullOr (types.strMatching "/[^[:cntrl:]]*");
      default = null;
      example = "/etc/devhost/templates";
      description = "A directory with admin overrides of devhost's embedded templates.";
    };

    addressPool = {
      network = lib.mkOption {
        type = types.strMatching "[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}";
        default = "10.233.0.0/16";
        example = "10.100.0.0/16";
        description = ''
          The IPv4 network containers get their addresses from: one local
          address per container, so a /16 holds thousands of containers.
          Must not overlap the host's other networks.
        '';
      };
      hostAddress = lib.mkOption {
        type = types.nullOr (types.strMatching "[0-9]{1,3}(\\.[0-9]{1,3}){3}");
        default = null;
        example = "10.233.0.1";
        description = ''
          The host side of every container's point-to-point link (shared by
          all of them). `null` means the first address of
          {option}`${opt}.addressPool.network`.
        '';
      };
      network6 = lib.mkOption {
        type = types.nullOr (types.strMatching "[0-9a-fA-F:]+/64");
        default = null;
        example = "fd00:dead:beef::/64";
        description = ''
          The IPv6 /64 containers get their IPv6 addresses from (one per
          container, kept for life like the IPv4 one), or `null` for
          IPv4-only containers. A unique local network (`fd…::/64`) with
          {option}`${opt}.ipv6.outbound` = `"nat66"`, or a global /64 that is
          routed to this host with `"routed"`. Containers registered before
          it was set get their IPv6 address at their next `devhost ensure`.
        '';
      };
      hostAddress6 = lib.mkOption {
        type = types.nullOr (types.strMatching "[0-9a-fA-F:]+");
        default = null;
        example = "fd00:dead:beef::1";
        description = ''
          The host side of every container's IPv6 link. `null` means the
          first address of {option}`${opt}.addressPool.network6`.
        '';
      };
    };

    ipv6.outbound = lib.mkOption {
      type = types.enum [
        "nat66"
        "routed"
        "none"
      ];
      default = "nat66";
      description = ''
        How containers reach IPv6 addresses beyond this host (with
        {option}`${opt}.addressPool.network6` set). `"nat66"`: the host
        masquerades them behind its own IPv6 address (NixOS' NAT with
        `networking.nat.enableIPv6`), for a unique local network6.
        `"routed"`: the host forwards their packets unchanged; network6
        must be a global /64 that the upstream router routes to this host
        (a /64 that is only on-link on the uplink needs NDP proxying
        instead), and the containers are then reachable from outside,
        guarded by their own firewalls (22, 80, 443 open). `"none"`: IPv6
        to and from the host only. With `"nat66"` and `"routed"` the host
        forwards IPv6, and Linux then ignores router advertisements on
        interfaces with `accept_ra = 1`: a host that takes its own IPv6
        default route from them needs `net.ipv6.conf.<interface>.accept_ra = 2`.
      '';
    };

    allowedChannelPrefixes = lib.mkOption {
      type = types.listOf (types.strMatching "(https|file)://[^[:space:]]*");
      default = [
        "https://hydra.flyingcircus.io/build/"
        "file:///nix/var/nix/profiles/per-user/root/channels/"
      ];
      example = [
        "https://"
        "file:///nix/var/nix/profiles/per-user/root/channels/"
      ];
      description = ''
        Where containers' channels may come from: a channel must lie under
        one of these (whole path segments). `"https://"` allows every
        https:// channel. A file:// channel's directory, with symlinks
        resolved, must lie under a file:// prefix (or in the Nix store), and
        it and every directory above it must be owned by root and writable
        by nobody else. The default allows the platform's hydra and root's
        channels. Empty: any https:// channel and no file:// channel.
        Channel URLs have one grammar: an https:// host (no user, no port)
        or an absolute file:// path, with paths of letters, digits and
        `-._~` only.
      '';
    };

    acme = {
      enable = lib.mkOption {
        type = types.bool;
        default = true;
        description = ''
          Get Let's Encrypt certificates for the containers' names. When off,
          devhost serves self-signed certificates.
        '';
      };
      acceptTerms = lib.mkOption {
        type = types.bool;
        default = false;
        description = ''
          Accept the ACME provider's terms of service (sets
          {option}`security.acme.acceptTerms`). Required with
          {option}`${opt}.acme.enable` unless `security.acme.acceptTerms` is set elsewhere.
        '';
      };
      email = lib.mkOption {
        type = types.nullOr (types.strMatching "[^@[:space:]]+@[^@[:space:]]+");
        default = null;
        example = "admin@example.com";
        description = ''
          Contact address of the ACME account (sets
          {option}`security.acme.defaults.email`). Required with
          {option}`${opt}.acme.enable` unless `security.acme.defaults.email` is set elsewhere.
        '';
      };
      staging = lib.mkOption {
        type = types.bool;
        default = false;
        description = "Use Let's Encrypt's staging server (untrusted certificates, generous rate limits).";
      };
      server = lib.mkOption {
        type = types.nullOr (types.strMatching "https?://[^[:space:]]+");
        default = null;
        example = "https://acme.test/dir";
        description = "An explicit ACME directory URL; overrides {option}`${opt}.acme.staging`.";
      };
      challenge = lib.mkOption {
        type = types.enum [
          "http-01"
          "dns-01"
        ];
        default = "http-01";
        description = ''
          How certificates are validated. `http-01`: one certificate per
          container, issued when it appears (Let's Encrypt allows 50 new
          certificates per domain and week; devhost warns near 40).
          `dns-01`: one wildcard certificate for `<publicAddress>` and
          `*.<publicAddress>` serves every container's name, so a new
          container is on HTTPS at once; nested aliases
          (`ALIAS.NAME.<publicAddress>`) are covered by `*.NAME.<publicAddress>`
          names packed into {option}`${opt}.acme.shards` shared certificates.
          Needs {option}`${opt}.acme.dnsProvider` and
          {option}`${opt}.acme.credentialsFile`.
        '';
      };
      dnsProvider = lib.mkOption {
        type = types.nullOr (types.strMatching "[a-z0-9][a-z0-9.-]{0,39}");
        default = null;
        example = "rfc2136";
        description = "lego's name of the DNS provider for `dns-01` (<https://go-acme.github.io/lego/dns/>), passed to {option}`security.acme.certs.<name>.dnsProvider`.";
      };
      credentialsFile = lib.mkOption {
        type = types.nullOr (types.strMatching "/[^[:space:]]*");
        default = null;
        example = "/run/keys/acme-dns.env";
        description = ''
          The provider's credentials (lego's environment variables) for
          `dns-01`, passed to {option}`security.acme.certs.<name>.credentialsFile`.
          An absolute path as a string, never a Nix path: the secret must not be
          copied into the world-readable Nix store.
        '';
      };
      shards = lib.mkOption {
        type = types.nullOr (types.ints.between 1 1000);
        default = null;
        defaultText = lib.literalMD "one per 100 containers of {option}`${opt}.capacity`";
        description = ''
          Number of wildcard shard slots for nested aliases in `dns-01` mode:
          a container's slot is a stable hash of its name. Changing it moves
          containers between shards, which reissues those certificates once.
        '';
      };
    };

    aliasStyle = lib.mkOption {
      type = types.enum [
        "nested"
        "flat"
      ];
      default = "nested";
      description = ''
        How aliases are named: `nested`, `ALIAS.NAME.<publicAddress>` (batou's
        and the old role's URLs), or `flat`, `ALIAS--NAME.<publicAddress>`,
        which the one wildcard certificate of `dns-01` covers (no issuance
        for any container).
      '';
    };

    cleanup = {
      stopAfter = lib.mkOption {
        type = types.strMatching durationPattern;
        default = "7d";
        example = "14d";
        description = "Stop (and no longer start at boot) a container not deployed for this long: `7d`, `36h`, `1d12h`.";
      };
      destroyAfter = lib.mkOption {
        type = types.strMatching durationPattern;
        default = "30d";
        description = "Destroy a container not deployed for this long (unless kept with `devhost keep`).";
      };
      at = lib.mkOption {
        type = types.strMatching "([01][0-9]|2[0-3]):[0-5][0-9]";
        default = "03:00";
        description = "Time of day (HH:MM, local time) of the daily cleanup.";
      };
    };

    nginx = {
      serverNamesHashBucketSize = lib.mkOption {
        type = types.ints.positive;
        default = derivedBucketSize;
        defaultText = lib.literalMD "the smallest power of two that holds the longest possible server name, `ALIAS.NAME.<publicAddress>` (a 63-character alias, an 11-character name): 128 for a public address of up to 34 characters";
        example = 256;
        description = ''
          nginx' `server_names_hash_bucket_size`: must hold the longest
          server name; a power of two. `devhost ensure` refuses a name that
          does not fit.
        '';
      };
      serverNamesHashMaxSize = lib.mkOption {
        type = types.ints.positive;
        default = 4096;
        description = "nginx' `server_names_hash_max_size`: grows with the number of names served.";
      };
      proxyTimeout = lib.mkOption {
        type = types.strMatching "[0-9]+[smh]";
        default = "300s";
        description = "Read and send timeout of the proxy to the containers (development servers can be slow).";
      };
      clientMaxBodySize = lib.mkOption {
        type = types.strMatching "[0-9]+[kmgKMG]?";
        default = "100m";
        description = "nginx' `client_max_body_size` for uploads to the containers.";
      };
    };

    limits = {
      memoryMax = lib.mkOption {
        type = types.nullOr (types.strMatching "[1-9][0-9]{0,9}[KMGT]?|[1-9][0-9]?%|100%");
        default = null;
        example = "2G";
        description = ''
          Default `MemoryMax=` of every container's unit `container@NAME`
          (a size with K, M, G or T, or a percentage of the host's memory);
          a container's own `memory_max` (`devhost up` with
          `provision-memory`) takes precedence. `null`: no limit.
        '';
      };
      cpuWeight = lib.mkOption {
        type = types.nullOr (types.ints.between 1 10000);
        default = null;
        example = 100;
        description = "Default `CPUWeight=` of every container's unit (systemd's own default is 100). `null`: not set.";
      };
      cpuQuota = lib.mkOption {
        type = types.nullOr (types.strMatching "[1-9][0-9]{0,5}%");
        default = null;
        example = "200%";
        description = "Default `CPUQuota=` of every container's unit, in percent of one CPU (`200%` is two CPUs). `null`: no quota.";
      };
      tasksMax = lib.mkOption {
        type = types.nullOr types.ints.positive;
        default = null;
        example = 4096;
        description = "Default `TasksMax=` (processes and threads) of every container's unit. `null`: systemd's default.";
      };
    };

    compatibility = {
      bootstrapKey = lib.mkOption {
        type = types.bool;
        default = false;
        description = ''
          Authorise batou 2.3/2.4's well-known bootstrap key for the user
          `developer` in every container. The key is public: enable this
          only while those batou versions are in use.
        '';
      };
      fcBuildDevContainer = lib.mkOption {
        type = types.bool;
        default = true;
        description = ''
          Allow {option}`${opt}.groups` to run `sudo fc-build-dev-container ensure|destroy ...`,
          the interface batou's built-in container provisioner calls.
        '';
      };
    };

    groups = lib.mkOption {
      type = types.listOf (types.strMatching "[a-z_][a-z0-9_-]*");
      default = [
        "users"
        "service"
      ];
      description = ''
        Unix groups whose members may reserve names for, create, update,
        keep, destroy and share containers (`sudo devhost
        reserve|ensure|destroy|keep|share|unshare|status`, and with
        {option}`${opt}.compatibility.fcBuildDevContainer` `sudo
        fc-build-dev-container ensure|destroy`). Groups that do not exist yet
        are created.
      '';
    };

    adminGroup = lib.mkOption {
      type = types.strMatching "[a-z_][a-z0-9_-]*";
      default = "wheel";
      description = "Members may run every `devhost` command as root (e.g. `devhost cleanup --dry-run`).";
    };

    maxContainersPerUser = lib.mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      example = 5;
      description = ''
        How many containers one user may own; `null` for no limit. Members
        of {option}`${opt}.adminGroup` are exempt. `devhost ensure` of a
        new container beyond it fails and lists the user's containers.
      '';
    };

    capacity = lib.mkOption {
      type = types.ints.between 1 100000;
      default = 100;
      example = 500;
      description = ''
        How many containers this host is expected to run. Sizes
        `fs.inotify.max_user_instances` (16 per container) and
        `fs.inotify.max_user_watches` (4096 per container), never below the
        old role's 512 and 16384.
      '';
    };

    containerStartTimeout = lib.mkOption {
      type = types.strMatching "[0-9]+(s|min|h)";
      default = "2min";
      description = ''
        `TimeoutStartSec` of the container units (in each one's drop-in
        `container@NAME.service.d/devhost.conf`; at least a minute: many
        containers start in parallel at boot).
      '';
    };

    rebuildCommand = lib.mkOption {
      type = types.nonEmptyListOf types.str;
      # sudo resets the environment, so devhost (run through sudo) would
      # rebuild without the host's NIX_PATH; the default passes it, and a
      # PATH with nixos-rebuild, explicitly.
      default =
        lib.optionals (config.nix.nixPath != [ ]) [
          envExe
          "NIX_PATH=${lib.concatStringsSep ":" config.nix.nixPath}"
          rootPath
        ]
        ++ [
          "nixos-rebuild"
          "switch"
        ];
      defaultText = lib.literalMD ''
        `[ "nixos-rebuild" "switch" ]`, run through `env` with the host's
        {option}`nix.nixPath` as `NIX_PATH` when that is not empty'';
      example = [
        "fc-manage"
        "switch"
      ];
      description = ''
        The argv devhost runs to apply a changed generated set. On the
        Flying Circus platform use `[ "fc-manage" "switch" ]`; on a host
        built from a flake add `--flake <ref>` and `--impure` (the generated
        set lives outside the flake). devhost runs it as root through sudo,
        which keeps the caller's PATH, so it runs through `env` with
        `PATH=/run/wrappers/bin:/run/current-system/sw/bin` (the default
        sets that PATH itself).
      '';
    };

    rebuildBatchWindow = lib.mkOption {
      # At most a minute, as devhost's host configuration allows.
      type = types.strMatching "(0|[1-9][0-9]{0,3}|[1-5][0-9]{4}|60000)ms|(0|[1-9]|[1-5][0-9]|60)s";
      default = "300ms";
      example = "1s";
      description = ''
        How long a host rebuild that starts on an idle host waits first, so
        that requests arriving together share it (devhost.hcl's
        `commands.rebuild_batch_window`). While requests keep being
        committed it waits another window, at most four in all, so a burst
        whose commits spread over more than one window still shares one
        rebuild. A longer window lets more near-simultaneous ensures share
        one rebuild; a lone request pays one window as extra latency, a
        burst at most four. `0ms` rebuilds at once. At most `60s`.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.publicAddress != null;
        message = "${opt}.publicAddress must be set when ${opt}.enable is true, e.g. \"dev.example.com\".";
      }
      {
        assertion = cfg.publicAddress == null || builtins.stringLength cfg.publicAddress <= 200;
        message = "${opt}.publicAddress is too long: ALIAS.NAME.<publicAddress> must stay within DNS' 253 characters.";
      }
      {
        assertion = cfg.generatedSet != null || !pureEval;
        message = ''
          ${opt}: this system is evaluated in pure mode (a flake build), which
          cannot read devhost's generated set at ${generatedFile}.
          Rebuild with --impure (nixos-rebuild switch --flake <ref> --impure) and set
          ${opt}.rebuildCommand to the same command, so devhost's own rebuilds work too.'';
      }
      {
        assertion = (generated.version or 1) == 1;
        message = "${opt}: the generated set ${generatedFile} has version ${toString (generated.version or "?")}, this module reads version 1. Run `devhost apply` with the devhost of ${opt}.package.";
      }
      {
        assertion = unknownContainerKeys == [ ];
        message = "${opt}: the generated set ${generatedFile} declares container settings this module does not pass on: ${lib.concatStringsSep ", " unknownContainerKeys}. devhost runs its containers as instances of NixOS' container@ template, configured by ${lib.concatStringsSep ", " containerKeys} only; remove them from the overridden container.nix.tmpl.";
      }
      {
        assertion = templateEnvironmentFile == "-/etc/${confDir}/%i.conf";
        message = "${opt}: NixOS' container@ template reads ${toString templateEnvironmentFile}, but this module writes the containers' settings to /etc/${confDir}/NAME.conf (system.stateVersion ${config.system.stateVersion}); this NixOS release is not supported.";
      }
      {
        assertion = networkOK;
        message = "${opt}.addressPool.network = \"${cfg.addressPool.network}\" is not an IPv4 network in CIDR notation.";
      }
      {
        assertion =
          cfg.addressPool.hostAddress == null
          || (hostAddressInt != null && networkOK && inNetwork (parseNetwork cfg.addressPool.network) hostAddressInt);
        message = "${opt}.addressPool.hostAddress = \"${toString cfg.addressPool.hostAddress}\" must be a valid address inside ${opt}.addressPool.network = \"${cfg.addressPool.network}\".";
      }
      {
        assertion = cfg.addressPool.hostAddress6 == null || cfg.addressPool.network6 != null;
        message = "${opt}.addressPool.hostAddress6 is set but ${opt}.addressPool.network6 is not: set the /64 it belongs to.";
      }
      {
        assertion = stopSeconds < destroySeconds;
        message = "${opt}.cleanup.stopAfter (${cfg.cleanup.stopAfter}) must be shorter than ${opt}.cleanup.destroyAfter (${cfg.cleanup.destroyAfter}).";
      }
      {
        assertion = !cfg.acme.enable || config.security.acme.acceptTerms;
        message = "${opt}.acme.enable is true but the ACME terms are not accepted: set ${opt}.acme.acceptTerms = true (or security.acme.acceptTerms), or set ${opt}.acme.enable = false for self-signed certificates.";
      }
      {
        assertion = !dns01 || cfg.acme.dnsProvider != null && cfg.acme.credentialsFile != null;
        message = "${opt}.acme.challenge = \"dns-01\" needs ${opt}.acme.dnsProvider (lego's provider name, e.g. \"rfc2136\") and ${opt}.acme.credentialsFile (the provider's credentials as lego's environment variables).";
      }
      {
        assertion = !cfg.acme.enable || config.security.acme.defaults.email != null;
        message = "${opt}.acme.enable is true but no ACME account email is set: set ${opt}.acme.email (or security.acme.defaults.email).";
      }
      {
        assertion =
          let
            b = cfg.nginx.serverNamesHashBucketSize;
          in
          pow2 (lib.findFirst (i: pow2 i >= b) 0 (lib.range 0 20)) == b;
        message = "${opt}.nginx.serverNamesHashBucketSize = ${toString cfg.nginx.serverNamesHashBucketSize} must be a power of two (e.g. 128 or 256).";
      }
      {
        assertion = cfg.groups != [ ] || !cfg.compatibility.fcBuildDevContainer;
        message = "${opt}.compatibility.fcBuildDevContainer needs at least one group in ${opt}.groups.";
      }
    ];

    warnings =
      lib.optional (generated ? publicAddress && generated.publicAddress != cfg.publicAddress)
        "${opt}: the generated set at ${generatedFile} was rendered for ${generated.publicAddress}, not ${toString cfg.publicAddress}; run `devhost apply`."
      ++ lib.optional (builtins.length (lib.attrNames generated.containers) > cfg.capacity)
        "${opt}: ${toString (builtins.length (lib.attrNames generated.containers))} containers are declared but ${opt}.capacity is ${toString cfg.capacity}; raise it so that the inotify limits grow with them.";

    environment.etc = containerConfFiles // {
      "devhost/devhost.hcl" = {
        # JSON syntax of HCL, which devhost recognises by the leading "{".
        text = builtins.toJSON hostConfig;
        mode = "0644";
      };
    };
    environment.systemPackages = [ cfg.package ];

    # Registry entries are private (0640): the admin group reads them
    # (`devhost list` without sudo), others do not. The setgid bit gives new
    # entries the directory's group.
    systemd.tmpfiles.rules = [
      "d ${cfg.stateDir} 0755 root root -"
      "d ${cfg.stateDir}/containers 2750 root ${cfg.adminGroup} -"
      # Password hashes of protected containers (devhost protect): nginx reads them.
      "d ${cfg.stateDir}/htpasswd 0750 root ${config.services.nginx.group} -"
    ];

    users.groups = lib.genAttrs (lib.filter (g: g != "users" && g != "wheel") cfg.groups) (_: { });

    # The containers devhost declared, run from their own profiles as
    # instances of NixOS' container@ template (see containerConf above).
    boot.enableContainers = true;
    systemd.packages = lib.mkIf (generated.containers != { }) [ containerDropIns ];
    # Started at boot: machines.target (which multi-user.target wants)
    # wants the running ones, as it does NixOS' autoStart containers.
    systemd.targets.machines.wants = map (n: "container@${n}.service") autoStartContainers;
    # (NixOS' extra NAME.containers hosts entries of declarative containers
    # are not written: devhost's own, networking.hosts below, name them.)
    # Static entries, so nginx starts even while a container is down.
    networking.hosts = generated.hosts;
    networking.nat = lib.mkMerge [
      {
        enable = true;
        internalInterfaces = [ "ve-+" ];
      }
      (lib.mkIf (ipv6Forward && cfg.ipv6.outbound == "nat66") {
        enableIPv6 = true;
        internalIPv6s = [ cfg.addressPool.network6 ];
      })
    ];
    networking.firewall.allowedTCPPorts = [
      80
      443
    ];
    boot.kernel.sysctl = {
      "net.ipv4.ip_forward" = 1;
      "net.ipv6.conf.all.forwarding" = lib.mkIf ipv6Forward 1;
      "fs.inotify.max_user_instances" = inotifyInstances;
      "fs.inotify.max_user_watches" = inotifyWatches;
    };

    services.nginx = {
      enable = true;
      recommendedProxySettings = true;
      recommendedTlsSettings = true;
      recommendedOptimisation = true;
      recommendedGzipSettings = true;
      inherit (cfg.nginx)
        serverNamesHashBucketSize
        serverNamesHashMaxSize
        proxyTimeout
        clientMaxBodySize
        ;
      virtualHosts = generated.virtualHosts;
    };
    # Containers start before nginx, which proxies to them by name; without
    # ACME nginx needs the self-signed certificate first.
    systemd.services.nginx = {
      after =
        map (n: "container@${n}.service") autoStartContainers
        ++ lib.optional (!cfg.acme.enable) "devhost-selfsigned.service";
      wants =
        map (n: "container@${n}.service") autoStartContainers
        ++ lib.optional (!cfg.acme.enable) "devhost-selfsigned.service";
    };

    # Without ACME: the self-signed certificate the virtual hosts name,
    # created when missing (owned by root, which runs it; the key readable
    # by nginx' group only).
    systemd.services.devhost-selfsigned = lib.mkIf (!cfg.acme.enable) {
      description = "Self-signed TLS certificate for the devhost's public names (ACME is off)";
      wantedBy = [ "multi-user.target" ];
      before = [ "nginx.service" ];
      path = [
        pkgs.openssl
        pkgs.coreutils
      ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        UMask = "0027";
      };
      script = selfSignedScript;
    };

    security.acme = lib.mkIf cfg.acme.enable {
      acceptTerms = lib.mkIf cfg.acme.acceptTerms true;
      defaults = {
        email = lib.mkIf (cfg.acme.email != null) cfg.acme.email;
        server = lib.mkIf (acmeServer != null) acmeServer;
      };
      # dns-01: the set's wildcard certificates, readable by nginx, whose
      # virtual hosts name them (useACMEHost).
      certs = lib.mkIf dns01 (
        lib.mapAttrs (_: c: {
          inherit (c) domain extraDomainNames;
          inherit (cfg.acme) dnsProvider credentialsFile;
          group = config.services.nginx.group;
        }) generated.certs
      );
    };

    security.sudo.extraRules = lib.mkAfter (
      [
        {
          inherit (cfg) groups;
          runAs = "root";
          commands =
            lib.concatMap (c: [
              (sudoCommand "${exe} ${c}")
              (sudoCommand "${exe} ${c} *")
            ]) userCommands
            ++ map (c: sudoCommand "${exe} ${c}") userExactCommands
            ++ lib.optionals cfg.compatibility.fcBuildDevContainer (
              map (c: sudoCommand "${compatExe} ${c} *") compatCommands
            );
        }
        {
          groups = [ cfg.adminGroup ];
          runAs = "root";
          commands = [ (sudoCommand exe) ];
        }
      ]
    );

    systemd.services.devhost-cleanup = lib.mkIf cfg.cleanupContainers {
      description = "Stop and destroy devhost containers nobody deployed for a while";
      after = [ "network.target" ];
      path = [ "/run/current-system/sw" ];
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${exe} cleanup";
      };
    };
    systemd.timers.devhost-cleanup = lib.mkIf cfg.cleanupContainers {
      description = "Daily cleanup of devhost containers";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = "*-*-* ${cfg.cleanup.at}:00";
        Persistent = true;
      };
    };
  };
}
