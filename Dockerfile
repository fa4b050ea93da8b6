# swarm-ingress image: a static binary on scratch.
#
# Build:  docker build -t swarm-ingress --build-arg VERSION=$(git describe --always --dirty) .
# (On a machine that cannot pull golang:1.26, scripts/builder-image.sh makes a local
# stand-in under that tag; scripts/ingress-image.sh does both and tags by content hash.)

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /ingress ./cmd/ingress
# /data must exist in the image, owned by the runtime user: a named volume mounted
# there starts as a copy of it, so the ACME cache is writable without root.
RUN mkdir -p /rootfs/data /rootfs/tmp && chmod 1777 /rootfs/tmp

FROM scratch
# CA roots for ACME and https upstreams (the builder's Debian bundle).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /ingress /ingress
COPY --from=build --chown=65532:65532 /rootfs/ /

# Non-root by default (uid/gid 65532, "nonroot"). Two things need thought:
# - Ports 80/443: Docker >= 20.10 sets net.ipv4.ip_unprivileged_port_start=0 in
#   every container network namespace, so a non-root process binds :80 and :443
#   (not with network_mode: host; run as root there).
# - The Docker socket (/var/run/docker.sock, mounted read-only) is usually
#   root:docker 0660. The process needs that group: run the service with
#   `user: "65532:<gid of the socket>"` (see examples/serve-stack.yml; the gid is
#   `stat -c %g /var/run/docker.sock` on the node), or as root (`user: "0"`).
USER 65532:65532

EXPOSE 80 443 8080
VOLUME /data
ENV INGRESS_DATA_DIR=/data
# The image has no shell: the binary checks its own admin /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["/ingress", "healthcheck"]
ENTRYPOINT ["/ingress"]
CMD ["serve"]
