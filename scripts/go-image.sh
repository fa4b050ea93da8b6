#!/usr/bin/env bash
# go-image.sh PKG REPO: build the Go main package PKG (e.g. ./internal/testbackend) as a
# static binary and import it as the image REPO:<hash of the binary>, a one-file root
# with ENTRYPOINT ["/app"]. Nothing is pulled: `docker import` needs no registry.
# An image with the same tag is reused, so repeated runs only pay for `go build`
# (itself cached). Prints the image reference on stdout.
set -euo pipefail
if [ $# -ne 2 ]; then
	echo "usage: $0 PKG REPO" >&2
	exit 2
fi
pkg=$1 repo=$2
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/app" "$pkg"
tag="$(sha256sum "$work/app" | cut -c1-16)"
ref="$repo:$tag"

if ! docker image inspect "$ref" >/dev/null 2>&1; then
	tar -C "$work" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - app |
		docker import --change 'ENTRYPOINT ["/app"]' - "$ref" >/dev/null
fi
echo "$ref"
