#!/usr/bin/env bash
# ensure-docker.sh: make sure a Docker Engine is running and this node is in an
# active single-node Swarm. Used by the test rig (internal/swarmtest), `make test`,
# `make demo` and CI. Safe to run concurrently (serialised by a lock file) and
# idempotent: when the engine answers and Swarm is active it changes nothing.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		log "need root to run: $* (run as root or install sudo)"
		return 1
	fi
}

# Several test processes start at once; only one of them may install or start.
exec 9>"${TMPDIR:-/tmp}/swarm-ingress-ensure-docker.lock"
flock -w 600 9 || { log "timed out waiting for the lock"; exit 1; }

if ! docker info >/dev/null 2>&1; then
	if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
		log "installing Debian's docker.io"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
	fi
	if ! docker info >/dev/null 2>&1; then
		log "starting dockerd (log: /var/log/swarm-ingress-dockerd.log)"
		# 9>&-: dockerd must not inherit the lock, or it would hold it forever.
		as_root setsid nohup dockerd >/var/log/swarm-ingress-dockerd.log 2>&1 </dev/null 9>&- &
		for _ in $(seq 1 120); do
			docker info >/dev/null 2>&1 && break
			sleep 0.5
		done
		if ! docker info >/dev/null 2>&1; then
			log "dockerd did not answer within 60s; last lines of its log:"
			tail -n 20 /var/log/swarm-ingress-dockerd.log >&2 || true
			exit 1
		fi
	fi
fi

state="$(docker info --format '{{.Swarm.LocalNodeState}}')"
case "$state" in
active) ;;
inactive)
	log "initialising a single-node Swarm (advertise 127.0.0.1)"
	docker swarm init --advertise-addr 127.0.0.1 >/dev/null
	;;
*)
	log "Swarm is in state '$state'; fix it by hand (docker swarm leave --force; docker swarm init --advertise-addr 127.0.0.1)"
	exit 1
	;;
esac

if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != "true" ]; then
	log "this node is not a Swarm manager; run the tests on a manager"
	exit 1
fi
