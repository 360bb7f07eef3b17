#!/usr/bin/env bash
# Recomputes the vendorHash of the Nix package (nix/vendor-hash.txt): the
# NAR sha256 of what `go mod vendor` produces, which is exactly what
# buildGoModule's goModules derivation hashes. Needs go and nix (2.4+).
#
#   nix/update-vendor-hash.sh          # write nix/vendor-hash.txt
#   nix/update-vendor-hash.sh --check  # exit 1 and print the right value if it is stale
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
GOFLAGS=-mod=mod go mod vendor -o "$tmp/vendor"
hash=$(nix --extra-experimental-features nix-command hash path --type sha256 "$tmp/vendor")
current=$(cat nix/vendor-hash.txt 2>/dev/null || true)

case "${1:-}" in
--check)
  if [[ "$hash" != "$current" ]]; then
    echo "nix/vendor-hash.txt is stale: it says '$current', go mod vendor hashes to '$hash'." >&2
    echo "Run nix/update-vendor-hash.sh (or make vendor-hash) and commit nix/vendor-hash.txt." >&2
    exit 1
  fi
  echo "vendorHash $hash is current"
  ;;
"")
  echo "$hash" >nix/vendor-hash.txt
  echo "nix/vendor-hash.txt: $hash"
  ;;
*)
  echo "usage: $0 [--check]" >&2
  exit 2
  ;;
esac
