#!/usr/bin/env bash
# Re-fetches the pinned livekit-client release from npm and vendors its ESM bundle, so that
# `go run ./cmd/hemicycle --dev` serves a working client without any build step.
# Usage: web-client/refresh-vendor.sh [VERSION]   (default: the version pinned in static/vendor/VERSION)
# To upgrade: pass the new version, then update test/browser/package.json's livekit-client pin to the
# same version and run `npm install` there, so the browser tests' check keeps comparing like with like.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
vendor="$here/static/vendor"
version="${1:-$(tr -d '[:space:]' < "$vendor/VERSION")}"
if [[ ! "$version" =~ ^2\.[0-9]+\.[0-9]+$ ]]; then
  echo "refresh-vendor: want an exact livekit-client 2.x version, got '$version'" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# npm pack checks the tarball against the registry's integrity hash.
(cd "$work" && npm pack --silent "livekit-client@$version" >/dev/null)
tar -xzf "$work/livekit-client-$version.tgz" -C "$work"

got="$(node -p "require('$work/package/package.json').version")"
if [[ "$got" != "$version" ]]; then
  echo "refresh-vendor: npm returned livekit-client $got, wanted $version" >&2
  exit 1
fi

install -m 0644 "$work/package/dist/livekit-client.esm.mjs" "$vendor/livekit-client.esm.mjs"
install -m 0644 "$work/package/LICENSE" "$vendor/LICENSE.livekit-client"
printf '%s\n' "$version" > "$vendor/VERSION"
(cd "$vendor" && sha256sum livekit-client.esm.mjs > SHA256SUMS)
echo "refresh-vendor: vendored livekit-client $version into $vendor"
