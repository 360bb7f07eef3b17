# The devhost package: the `devhost` command, its compatibility name
# `fc-build-dev-container`, shell completions and man pages generated from
# the command tree. Called by the flake (packages, overlay) and ./overlay.nix.
{
  lib,
  stdenv,
  buildGoModule,
  # go.mod asks for Go 1.26; NixOS 25.11 has it as go_1_26 next to its
  # default Go 1.25.
  buildGo126Module ? null,
  installShellFiles,
  version ? "dev",
  # sha256 of `go mod vendor`; nix/update-vendor-hash.sh recomputes it and
  # .ci/run fails when it is stale.
  vendorHash ? lib.fileContents ./vendor-hash.txt,
}:
let
  build = if buildGo126Module != null then buildGo126Module else buildGoModule;
  fs = lib.fileset;
in
build {
  pname = "devhost";
  inherit version vendorHash;

  # Everything but the Nix packaging itself, so that editing the flake does
  # not rebuild the package, and `go mod vendor` sees the same Go packages
  # as nix/update-vendor-hash.sh does in a checkout.
  src = fs.toSource {
    root = ../.;
    fileset = fs.difference ../. (
      fs.unions (
        map fs.maybeMissing [
          ../flake.nix
          ../flake.lock
          ../nix
          ../.github
          ../.git
          ../bin
          ../result
        ]
      )
    );
  };

  subPackages = [ "cmd/devhost" ];
  env.CGO_ENABLED = 0;
  ldflags = [
    "-s"
    "-w"
    "-X github.com/flyingcircusio/devhost/internal/cli.version=${version}"
  ];

  nativeBuildInputs = [ installShellFiles ];

  postInstall =
    ''
      ln -s devhost $out/bin/fc-build-dev-container
    ''
    + lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
      installShellCompletion --cmd devhost \
        --bash <($out/bin/devhost completion bash) \
        --fish <($out/bin/devhost completion fish) \
        --zsh <($out/bin/devhost completion zsh)
      $out/bin/devhost man man1
      installManPage man1/*.1
    '';

  meta = {
    description = "Development deployments of batou environments as NixOS containers on a shared devhost";
    homepage = "https://github.com/flyingcircusio/devhost";
    mainProgram = "devhost";
    platforms = lib.platforms.linux;
  };
}
