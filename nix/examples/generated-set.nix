# A generated set in the generator's format (version 1), with two containers
# as `devhost render` writes them: only strings, values usable as-is for
# containers.<name>, services.nginx.virtualHosts.<host> and networking.hosts.
{
  version = 1;
  publicAddress = "dev.example.com";
  containers = {
    web = {
      path = "/nix/var/nix/profiles/per-container/web/system";
      privateNetwork = true;
      hostAddress = "10.233.0.1";
      localAddress = "10.233.0.2";
      autoStart = true;
    };
    review = {
      path = "/nix/var/nix/profiles/per-container/review/system";
      privateNetwork = true;
      hostAddress = "10.233.0.1";
      localAddress = "10.233.0.3";
      autoStart = false;
    };
  };
  virtualHosts = {
    "web.dev.example.com" = {
      serverAliases = [
        "www.web.dev.example.com"
        "api.web.dev.example.com"
      ];
      forceSSL = true;
      enableACME = true;
      locations."/" = {
        proxyPass = "https://web";
        proxyWebsockets = true;
      };
    };
    "review.dev.example.com" = {
      serverAliases = [ ];
      forceSSL = true;
      enableACME = true;
      locations."/" = {
        proxyPass = "https://review";
        proxyWebsockets = true;
      };
    };
  };
  hosts = {
    "10.233.0.2" = [ "web" ];
    "10.233.0.3" = [ "review" ];
  };
}
