#!/usr/bin/env bash
# builder-image.sh: make sure the Dockerfile's builder image (golang:1.26) exists.
# Nothing can be pulled on an offline machine, so when it is missing this builds a
# local stand-in under the same tag with `docker import`: the machine's own Go
# toolchain (`go env GOROOT`) at /usr/local/go, Debian's busybox-static as /bin/sh
# (plus its applets), and the CA certificates, with PATH, GOPATH and
# GOTOOLCHAIN=local set like the official image. A real golang:1.26 is left alone.
set -euo pipefail
ref="${BUILDER_IMAGE:-golang:1.26}"
log() { printf 'builder-image: %s\n' "$*" >&2; }

exec 8>"${TMPDIR:-/tmp}/swarm-ingress-builder-image.lock"
flock -w 600 8 || { log "timed out waiting for the lock"; exit 1; }

if docker image inspect "$ref" >/dev/null 2>&1; then
	exit 0
fi

goroot="$(go env GOROOT)"
want="$(echo "$ref" | sed -n 's/^golang:\([0-9]*\.[0-9]*\).*/go\1/p')"
have="$(go env GOVERSION)"
case "$have" in
"$want" | "$want".*) ;;
*) log "warning: local Go is $have, tagging it as $ref anyway" ;;
esac

# Debian's busybox-static (a static /bin/busybox; the plain busybox package is
# dynamically linked and would not run in the stand-in).
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
	log "installing Debian's busybox-static"
	if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; else SUDO=""; fi
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
busybox=/bin/busybox
certs=/etc/ssl/certs/ca-certificates.crt
[ -f "$certs" ] || { log "missing $certs (apt-get install ca-certificates)"; exit 1; }

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/usr/local" "$root/etc/ssl/certs" "$root/go/bin" "$root/root" "$root/tmp"
chmod 1777 "$root/tmp"
log "copying $goroot ($have) into the stand-in"
tar -C "$goroot" --exclude=./test --exclude=./api -cf - . | (mkdir -p "$root/usr/local/go" && tar -C "$root/usr/local/go" -xf -)
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cp "$certs" "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

tar -C "$root" --numeric-owner -cf - . |
	docker import \
		--change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV GOPATH=/go' \
		--change 'ENV GOTOOLCHAIN=local' \
		--change "ENV GOLANG_VERSION=${have#go}" \
		--change 'ENV HOME=/root' \
		--change 'WORKDIR /go' \
		--change 'CMD ["/bin/sh"]' \
		--message "local stand-in for $ref: $have from $goroot, busybox-static, CA certificates" \
		- "$ref" >/dev/null
log "built stand-in $ref"
