# What the devhost module uses and NixOS 20.09 (the release the whole-host
# test evaluates) does not have yet, back-filled for that test only: newer
# lib functions, and options that newer NixOS declares, each mapped onto
# what 20.09 offers so the result is what the newer option would produce.
{
  # lib.extend overlay.
  lib = self: super: {
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
    literalMD = text: {
      _type = "literalMD";
      inherit text;
    };
    types = super.types // {
      # Newer lib's types.raw: any value, never merged.
      raw = super.types.unspecified // {
        name = "raw";
        merge = super.options.mergeOneOption;
      };
    };
  };

  module =
    { config, lib, ... }:
    let
      nginx = config.services.nginx;
      acme = config.security.acme;
      types = lib.types;
      opt = type: default: lib.mkOption { inherit type default; };
    in
    {
      options = {
        # security.acme.defaults (NixOS 21.11): 20.09 has the top-level
        # security.acme.email and server.
        security.acme.defaults = {
          email = opt (types.nullOr types.str) null;
          server = opt (types.nullOr types.str) null;
        };
        # security.acme.certs.<name>.extraDomainNames (NixOS 21.05): 20.09
        # has the attribute set extraDomains (name to webroot).
        security.acme.certs = lib.mkOption {
          type = types.attrsOf (
            types.submodule (
              { config, ... }:
              {
                options.extraDomainNames = opt (types.listOf types.str) [ ];
                config.extraDomains = lib.genAttrs config.extraDomainNames (_: null);
              }
            )
          );
        };
        # nginx options of newer NixOS.
        services.nginx = {
          serverNamesHashBucketSize = opt (types.nullOr types.ints.positive) null;
          serverNamesHashMaxSize = opt (types.nullOr types.ints.positive) null;
          proxyTimeout = opt types.str "60s";
          # Per-location recommendedProxySettings (NixOS 22.11).
          virtualHosts = lib.mkOption {
            type = types.attrsOf (
              types.submodule {
                options.locations = lib.mkOption {
                  type = types.attrsOf (
                    types.submodule {
                      # The module sets the server-wide option too, with
                      # which 20.09 includes the headers in every location.
                      options.recommendedProxySettings = opt types.bool false;
                    }
                  );
                };
              }
            );
          };
        };
      };
      config = {
        security.acme.email = lib.mkIf (acme.defaults.email != null) acme.defaults.email;
        security.acme.server = lib.mkIf (acme.defaults.server != null) acme.defaults.server;
        services.nginx.appendHttpConfig = lib.concatStringsSep "\n" (
          lib.optional (nginx.serverNamesHashBucketSize != null) "server_names_hash_bucket_size ${toString nginx.serverNamesHashBucketSize};"
          ++ lib.optional (nginx.serverNamesHashMaxSize != null) "server_names_hash_max_size ${toString nginx.serverNamesHashMaxSize};"
          ++ [
            "proxy_connect_timeout ${nginx.proxyTimeout};"
            "proxy_send_timeout ${nginx.proxyTimeout};"
            "proxy_read_timeout ${nginx.proxyTimeout};"
          ]
        );
      };
    };
}
