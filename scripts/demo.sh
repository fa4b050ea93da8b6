#!/usr/bin/env bash
# demo.sh up|down: the local demo behind `make demo` / `make demo-down`.
#
# up:   builds the ingress image (from ./Dockerfile) and the SSE demo image, creates
#       an attachable overlay network, deploys examples/serve-stack.yml and
#       examples/sse-demo/stack.yml as two stacks, waits until the route answers and
#       prints live events streamed through the ingress, one line per event as it
#       arrives.
# down: removes the two stacks, the network, the ingress's data volume and the
#       demo's cache key secret.
set -euo pipefail
cd "$(dirname "$0")/.."

ingress_stack=swarm-ingress-demo
sse_stack=swarm-ingress-demo-sse
network=swarm-ingress-demo-edge
volume="${ingress_stack}_data"
secret=swarm-ingress-demo-cache-key
host=sse.localhost
log() { printf '\033[1mdemo:\033[0m %s\n' "$*" >&2; }

# port_free PORT: nothing accepts connections on PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port CANDIDATE...: the first free one.
pick_port() {
	for p in "$@"; do
		if port_free "$p"; then
			echo "$p"
			return 0
		fi
	done
	log "none of the ports $* is free"
	return 1
}

# wait_gone WHAT CMD...: run CMD every 0.5s (up to 60s) until it prints nothing.
wait_gone() {
	local what=$1
	shift
	for _ in $(seq 1 120); do
		[ -z "$("$@" 2>/dev/null)" ] && return 0
		sleep 0.5
	done
	log "$what still present after 60s"
	return 1
}

up() {
	bash scripts/ensure-docker.sh
	log "building images (first run: a few minutes)"
	local ingress_image sse_image http_port https_port gid
	ingress_image="$(bash scripts/ingress-image.sh)"
	sse_image="$(bash scripts/go-image.sh ./examples/sse-demo swarm-ingress-sse-demo)"
	log "ingress image $ingress_image, demo image $sse_image"

	if docker service inspect "${ingress_stack}_ingress" >/dev/null 2>&1; then
		log "an earlier demo is still deployed; removing it first"
		down
	fi
	http_port="$(pick_port 80 8081 8082 8083 8084)"
	https_port="$(pick_port 443 8443 8444 8445 8446)"
	gid="$(stat -c %g /var/run/docker.sock)"

	if ! docker network inspect "$network" >/dev/null 2>&1; then
		docker network create --driver overlay --attachable --label swarm-ingress.demo=1 "$network" >/dev/null
	fi
	# The stack mounts the cache key secret; one node needs no shared cache,
	# so the demo keeps INGRESS_CACHE=dir and leaves no Swarm configs behind.
	if ! docker secret inspect "$secret" >/dev/null 2>&1; then
		head -c 32 /dev/urandom | docker secret create --label swarm-ingress.demo=1 "$secret" - >/dev/null
	fi
	log "deploying the ingress (HTTP on 127.0.0.1:$http_port, HTTPS on :$https_port, user 65532:$gid)"
	INGRESS_IMAGE="$ingress_image" DOCKER_GID="$gid" EDGE_NETWORK="$network" \
		INGRESS_CACHE=dir INGRESS_CACHE_SECRET="$secret" \
		INGRESS_HTTP_PORT="$http_port" INGRESS_HTTPS_PORT="$https_port" \
		docker stack deploy --resolve-image never --compose-file examples/serve-stack.yml "$ingress_stack" >/dev/null
	log "deploying the SSE demo (2 replicas, labels ingress.host=$host ingress.upstream=tasks)"
	SSE_DEMO_IMAGE="$sse_image" EDGE_NETWORK="$network" \
		docker stack deploy --resolve-image never --compose-file examples/sse-demo/stack.yml "$sse_stack" >/dev/null

	log "waiting for the route, then streaming 5 events through the ingress:"
	if ! go run ./examples/sse-demo/watch -url "http://127.0.0.1:$http_port/events" -host "$host" -n 5 -wait 120s; then
		log "the demo did not stream; state for debugging:"
		docker service ps --no-trunc "${ingress_stack}_ingress" "${sse_stack}_sse" >&2 || true
		docker service logs --tail 30 "${ingress_stack}_ingress" >&2 || true
		log "remove it with: make demo-down"
		exit 1
	fi
	cat >&2 <<-MSG

		The demo is running. Try:
		  curl -N -H 'Host: $host' http://127.0.0.1:$http_port/events
		  docker service logs -f ${ingress_stack}_ingress
		Remove everything with: make demo-down
	MSG
}

# leftovers DOCKER-LIST-COMMAND...: IDs the command lists for either demo stack
# (label filters are ANDed by Docker, so one call per stack).
leftovers() {
	docker "$@" --filter "label=com.docker.stack.namespace=$sse_stack"
	docker "$@" --filter "label=com.docker.stack.namespace=$ingress_stack"
}

down() {
	docker stack rm "$sse_stack" "$ingress_stack" >/dev/null 2>&1 || true
	wait_gone "services" leftovers service ls -q
	wait_gone "containers" leftovers ps -aq
	# Swarm releases a network's endpoints a moment after the containers go.
	if docker network inspect "$network" >/dev/null 2>&1; then
		wait_gone "network $network" sh -c "docker network rm '$network' >/dev/null 2>&1 || echo busy"
	fi
	if docker volume inspect "$volume" >/dev/null 2>&1; then
		wait_gone "volume $volume" sh -c "docker volume rm '$volume' >/dev/null 2>&1 || echo busy"
	fi
	if docker secret inspect "$secret" >/dev/null 2>&1; then
		docker secret rm "$secret" >/dev/null
	fi
	log "removed stacks $ingress_stack and $sse_stack, network $network, volume $volume, secret $secret"
}

case "${1:-}" in
up) up ;;
down) down ;;
*)
	echo "usage: $0 up|down" >&2
	exit 2
	;;
esac
