#!/usr/bin/env bash
# Vendors the compiled NHS.UK frontend (npm package nhsuk-frontend) into this
# directory: the minified CSS and JavaScript module and the images the CSS
# names, nothing else. Run from anywhere:
#
#   bash adapter/mdtweb/assets/nhsuk/vendor.sh 10.6.1
#
# then update VERSION in README.md's table, look at a page, and commit.
# The CSS names its images at /assets/images/…; the MDT pages serve them at
# /mdt/assets/nhsuk/images/…, so the paths are rewritten (the only change).
set -euo pipefail
version="${1:?usage: vendor.sh VERSION}"
dir="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "nhsuk-frontend@$version" >/dev/null && tar xzf "nhsuk-frontend-$version.tgz")
dist="$tmp/package/dist/nhsuk"
sed 's#url(/assets/images/#url(/mdt/assets/nhsuk/images/#g' "$dist/nhsuk-frontend.min.css" >"$dir/nhsuk-frontend.min.css"
cp "$dist/nhsuk-frontend.min.js" "$dir/nhsuk-frontend.min.js"
# The source map comment points at a file not vendored.
sed -i 's#//\# sourceMappingURL=.*$##' "$dir/nhsuk-frontend.min.css" "$dir/nhsuk-frontend.min.js"
rm -rf "$dir/images"
mkdir -p "$dir/images"
for img in $(grep -o 'url(/mdt/assets/nhsuk/images/[^)]*)' "$dir/nhsuk-frontend.min.css" | sed 's#url(/mdt/assets/nhsuk/images/##; s#)$##' | sort -u); do
	cp "$dist/assets/images/$img" "$dir/images/$img"
done
cp "$dist/assets/images/favicon.ico" "$dist/assets/images/favicon.svg" "$dir/images/"
echo "nhsuk-frontend $version vendored into $dir"
