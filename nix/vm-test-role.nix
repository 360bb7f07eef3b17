# The devhost role as the VM test configures it. Shared by the test's node
# (nix/vm-test.nix) and the /etc/nixos/configuration.nix the VM rebuilds
# itself from, and evaluated on machines without nixpkgs against the
# module and its typed stubs (tests/nix), so it may only use options the
# module sets or declares. Whether ACME is on is the test's mode
# (modeSettings in nix/vm-test.nix).
{
  flyingcircus.roles.devhost = {
    enable = true;
    publicAddress = "dev.test";
    capacity = 4;
    # IPv6 in the containers, out through NAT66 (the default outbound).
    addressPool.network6 = "fd00:dead:beef::/64";
    containerStartTimeout = "5min";
    # A host-wide limit, which the containers' drop-ins carry.
    limits.tasksMax = 2048;
  };
  # A developer: a member of "users", one of the role's default groups.
  users.users.alice = {
    isNormalUser = true;
    description = "developer in the VM test";
  };
}
