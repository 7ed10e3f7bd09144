#!/usr/bin/env bash
# Downloads axe-core (the accessibility engine the MDT browser test injects
# into each page), checks its SHA-256 and prints the path of axe.min.js.
#
# axe-core is test-only and 650 KB (MPL-2.0), so it is fetched when the tests
# run rather than vendored: `npm pack` of a pinned version (no install, no
# dependencies, no scripts), npm checking the registry's integrity, then the
# file checked against the SHA-256 below, as fetch-schema.sh does for the FHIR
# schema.
#
# Usage:   export LINKBRIDGE_AXE_JS="$(bash adapter/mdtweb/fetch-axe.sh)"
# Cache:   $LINKBRIDGE_CACHE_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/linkbridge
set -euo pipefail

pkg=axe-core
version=4.14.1
member=package/axe.min.js
sha256=29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c

cache="${LINKBRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/linkbridge}/axe-core"
axe="$cache/axe-$version.$sha256.min.js"

if [ -f "$axe" ] && echo "$sha256  $axe" | sha256sum --check --status; then
	echo "$axe"
	exit 0
fi

mkdir -p "$cache"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent --loglevel=error "$pkg@$version" >/dev/null)
tar -xzf "$tmp/$pkg-$version.tgz" -C "$tmp" "$member"
if ! echo "$sha256  $tmp/$member" | sha256sum --check --status; then
	echo "fetch-axe.sh: $pkg@$version $member does not have SHA-256 $sha256" >&2
	exit 1
fi
mv "$tmp/$member" "$axe"
echo "$axe"
