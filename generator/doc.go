// Package generator turns the host configuration and the registry into the
// generated set: the Nix files the devhost NixOS module imports, the
// containers' own system configurations, and the status page. Generate is
// pure and deterministic (same input, same bytes, whatever the order of the
// containers); Write puts a set on disk atomically as a whole.
//
// # Contract of the generated set (version 1)
//
// The set is a directory (host configuration generated_dir, default
// /var/lib/devhost/generated) holding:
//
//	default.nix                 the index the NixOS module imports
//	certs.json                  dns-01 only: the certificate plan default.nix reads (planCerts)
//	containers/<name>.nix       host side of one container, merged by default.nix
//	<name>/configuration.nix    the container's own NixOS system
//	www/index.html              the status page
//
// default.nix is a Nix expression without function arguments. Evaluated
// with `nix-instantiate --eval --strict --json` it needs no nixpkgs, copies
// nothing to the store (every path in it is a string) and gives:
//
//	{
//	  version = 1;
//	  publicAddress = "dev.example.com";
//	  containers.<name> = {            # NixOS containers.<name> options; the module writes them as the
//	                                   # conf file of NixOS' container@ template (only these keys, and
//	                                   # timeoutStartSec in an overridden template)
//	    path = "<ProfileDir>/<name>/system";
//	    privateNetwork = true;
//	    hostAddress = "10.233.0.1";     # the pool's host address, shared
//	    localAddress = "10.233.0.2";    # the container's own
//	    # only with addresses.network6 and an entry that has an address6:
//	    hostAddress6 = "fd00::1";       # the IPv6 pool's host address, shared
//	    localAddress6 = "fd00::2";      # the container's own
//	    autoStart = true;               # state == running
//	  };
//	  virtualHosts."<name>.<public>" = {   # usable as-is as services.nginx.virtualHosts.<host>
//	    serverAliases = [ "<alias>.<name>.<public>" … ];   # only with the alias proxy on
//	    forceSSL = true;
//	    enableACME = <acme.enable>;    # http-01; with dns-01 instead:
//	    useACMEHost = "<public>";       # or its shard "<public>-shard-NN" when it has nested aliases
//	    # only when ACME is off; the NixOS module provides this pair:
//	    sslCertificate = "<StateDir>/selfsigned/cert.pem";
//	    sslCertificateKey = "<StateDir>/selfsigned/key.pem";
//	    basicAuthFile = "<StateDir>/htpasswd/<name>";   # only when protected (devhost protect)
//	    locations."/" = {
//	      proxyPass = "https://<name>";
//	      proxyWebsockets = true;
//	      recommendedProxySettings = true;   # NixOS adds Host, X-Real-IP, X-Forwarded-* once
//	      extraConfig = "…";  # proxy_ssl_verify off, proxy_ssl_server_name on, proxy_ssl_name $host,
//	                          # proxy_connect/read/send_timeout, client_max_body_size
//	    };
//	  };
//	  virtualHosts."<public>" = {          # the status page
//	    forceSSL = true; enableACME = …; (sslCertificate, sslCertificateKey as above)
//	    root = "<GeneratedDir>/www";
//	    locations."/".tryFiles = "/index.html =404";   # nothing else in the set is served
//	  };
//	  hosts."<localAddress>" = [ "<name>" ];   # for networking.hosts: nginx resolves https://<name> while the container is down
//	  hosts."<localAddress6>" = [ "<name>" ];  # the same for its IPv6 address, when it has one
//	  certs."<cert>" = { domain; extraDomainNames; };   # dns-01 only, else { }: for security.acme.certs
//	  # only for containers with resource limits (their own or the host's limits block):
//	  services."container@<name>".serviceConfig = { MemoryMax = "2G"; CPUWeight = 100; CPUQuota = "200%"; TasksMax = 4096; };
//	                                   # the module puts these four in the unit's drop-in
//	  cleanup = { enable = <cleanup.enable>; at = "03:00"; };
//	}
//
// The proxy headers come from each location's own recommendedProxySettings
// (NixOS includes them in the location once, whether or not the module turns
// services.nginx.recommendedProxySettings on); extraConfig never repeats them,
// so no header is sent twice. Its timeouts and body size, set at location
// level, take precedence over the http-level ones.
//
// The host's evaluation reads only default.nix and containers/ (IsHostFile):
// it grows with the number of containers, never with what they contain
// (BenchmarkNixEval1000: 1,000 containers evaluate in well under 0.5 s).
//
// <name>/configuration.nix is a NixOS module function ({ config, lib,
// pkgs, ... }:) for the container's own system, built by the lifecycle with
// the container's channel (ConfigurationPath) and installed as the profile
// <ProfileDir>/<name>/system; the host never evaluates it. It sets
// boot.isContainer, the host name, the user developer (wheel and service,
// passwordless sudo, the registry's SSH keys plus batou's bootstrap key only
// with compat.bootstrap_key), the group service and the environment's service
// user (home /srv/<user>), sshd, the firewall (22, 80, 443), a self-signed
// certificate for the container's names in /var/lib/devhost-cert (group
// devhost-cert; with nginx enabled a fallback HTTPS server uses it), and
// imports the deployment's provision.nix from ProvisionNixPath
// (<StateDir>/provision/<name>.nix) when that file exists.
//
// www/index.html lists every container with owner, environment, state,
// creation and last deployment times, URLs and labels; every value is
// HTML-escaped.
//
// Every value in every file went through the Nix or HTML escapers of
// package templates (internal/nixlit): nothing from the registry is pasted
// raw. Times are the registry's (RFC 3339, UTC); nothing depends on the
// clock, the map order or the input order.
package generator
