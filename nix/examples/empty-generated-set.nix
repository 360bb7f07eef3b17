# The generated set of a devhost without containers (what the module assumes
# when /var/lib/devhost/generated does not exist yet).
{
  version = 1;
  publicAddress = "dev.example.com";
  containers = { };
  virtualHosts = { };
  hosts = { };
}
