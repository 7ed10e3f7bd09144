#!/usr/bin/env bash
# Static checks: `go vet ./...`, then golangci-lint with .golangci.yml
# (govet, staticcheck, errcheck, ineffassign, unused, gofmt/goimports, and
# the depguard rules that fence the package layout). Exits non-zero on any
# finding of either.
#
# golangci-lint is installed through the Go module proxy at the pinned
# version into $LINT_BIN (default: $(go env GOPATH)/bin), only when the
# binary there is not that version built by this Go release. staticcheck
# runs inside it: golangci-lint v2.15.0 embeds honnef.co/go/tools v0.8.2,
# configured in .golangci.yml with the checks `staticcheck ./...` runs by
# default.
set -euo pipefail
cd "$(dirname "$0")/.."

GOLANGCI_LINT_VERSION=v2.15.0
GOLANGCI_LINT_MODULE=github.com/golangci/golangci-lint/v2

bin="${LINT_BIN:-$(go env GOPATH)/bin}"
lint="$bin/golangci-lint"
go_release="$(go env GOVERSION)" # e.g. go1.26.8

# installed reports whether $lint is the pinned version, built by the same
# Go release (major.minor) as the toolchain here: golangci-lint refuses to
# lint code for a newer Go than the one that built it.
installed() {
	[ -x "$lint" ] || return 1
	local info built version
	info="$(go version -m "$lint" 2>/dev/null)" || return 1
	built="$(awk 'NR == 1 { print $2 }' <<<"$info")"
	version="$(awk -v m="$GOLANGCI_LINT_MODULE" '$1 == "mod" && $2 == m { print $3 }' <<<"$info")"
	[ "$version" = "$GOLANGCI_LINT_VERSION" ] && [ "${built%.*}" = "${go_release%.*}" ]
}

if ! installed; then
	echo "lint: installing golangci-lint $GOLANGCI_LINT_VERSION into $bin"
	GOBIN="$bin" go install "$GOLANGCI_LINT_MODULE/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
fi
"$lint" version

status=0
echo "lint: go vet ./..."
go vet ./... || status=1
echo "lint: golangci-lint run ./..."
"$lint" run ./... || status=1
exit "$status"
