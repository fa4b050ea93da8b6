#!/usr/bin/env bash
# ingress-image.sh: build the ingress image from ./Dockerfile and print its
# reference, swarm-ingress:<hash of the build context>. An unchanged context is
# not rebuilt. Makes the local golang:1.26 stand-in first when it is missing.
# The image is also tagged swarm-ingress:latest.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="${INGRESS_IMAGE_REPO:-swarm-ingress}"
log() { printf 'ingress-image: %s\n' "$*" >&2; }

bash scripts/builder-image.sh

version="$(git describe --always --dirty 2>/dev/null || echo dev)"
# The hash covers what .dockerignore lets into the context and the builder
# image; not the version string, so a commit elsewhere in the tree does not force
# a rebuild (the version stamped in a reused image may then be an older one).
hash="$(
	{
		docker image inspect --format '{{.Id}}' golang:1.26
		find Dockerfile .dockerignore go.mod go.sum cmd pkg internal -type f \
			! -name '*_test.go' ! -path '*/testdata/*' \
			! -path 'internal/swarmtest/*' ! -path 'internal/testbackend/*' \
			-print0 | LC_ALL=C sort -z | xargs -0 sha256sum
	} | sha256sum | cut -c1-16
)"
ref="$repo:$hash"

exec 7>"${TMPDIR:-/tmp}/swarm-ingress-image.lock"
flock -w 900 7 || { log "timed out waiting for the lock"; exit 1; }

if ! docker image inspect "$ref" >/dev/null 2>&1; then
	log "building $ref (version $version)"
	# The engine here has no BuildKit (no buildx); the classic builder reads the
	# Dockerfile as is.
	if ! out="$(DOCKER_BUILDKIT=0 docker build --force-rm -q \
		--label swarm-ingress.build=1 \
		--build-arg VERSION="$version" -t "$ref" . 2>&1)"; then
		printf '%s\n' "$out" >&2
		exit 1
	fi
fi
docker tag "$ref" "$repo:latest"
echo "$ref"
