# bench/peers.sh: starting and stopping the proxies under test (sourced by
# bench/run.sh). Every peer serves the same backend on loopback: plain HTTP
#   on $(port_of PEER), HTTPS (TLS 1.3 and 1.2, HTTP/2 and HTTP/1.1 by ALPN,
#   the bench's ECDSA P-256 certificate for localhost) on the next port,
#   /gzip/... compressed with gzip where the peer can.
# It runs pinned on CPU0 with one core's worth of workers: nginx
# worker_processes = GOMAXPROCS of the Go peers = $PROXY_PROCS.
# shellcheck shell=bash

# port_of PEER: the first of the peer's ports (HTTP; HTTPS is +1, admin +2).
port_of() {
	case $1 in
	nginx) echo $((PORT_BASE + 10)) ;;
	caddy) echo $((PORT_BASE + 20)) ;;
	traefik) echo $((PORT_BASE + 30)) ;;
	ingress) echo $((PORT_BASE + 40)) ;;
	nginx-default) echo $((PORT_BASE + 50)) ;;
	esac
}

check_ports() {
	local p peer
	for peer in nginx caddy traefik ingress nginx-default; do
		for p in $(seq "$(port_of $peer)" $(($(port_of $peer) + 2))) $P_BACKEND; do
			if ss -Hltn "sport = :$p" | grep -q .; then
				echo "bench: port $p is in use; set BENCH_PORT_BASE to a free range" >&2
				exit 1
			fi
		done
	done
}

render() { # render TEMPLATE OUT DIR HTTP_PORT
	sed -e "s|@PREFIX@|$3|g" -e "s|@LISTEN@|127.0.0.1:$4|g" -e "s|@LISTEN_PORT@|$4|g" \
		-e "s|@TLS_LISTEN@|127.0.0.1:$(($4 + 1))|g" -e "s|@TLS_PORT@|$(($4 + 1))|g" \
		-e "s|@BACKEND@|127.0.0.1:$P_BACKEND|g" -e "s|@WORKERS@|$PROXY_PROCS|g" \
		-e "s|@CERT@|$CERTS/bench.crt|g" -e "s|@KEY@|$CERTS/bench.key|g" "$1" >"$2"
}

# available PEER: whether the peer's binary is there.
available() {
	case $1 in
	nginx | nginx-default) command -v nginx >/dev/null ;;
	caddy) [[ -n ${CADDY:-} ]] ;;
	traefik) [[ -n ${TRAEFIK:-} ]] ;;
	ingress) [[ -n ${INGRESS:-} ]] ;;
	esac
}

# The ingress's routes: / (the main lines), /gzip (compress=gzip, issue 13),
# /eject and /noeject (issue 12: outlier ejection and active health checks on
# with their defaults, against eject.after=0). Each is its own service, so a
# key this build does not know only takes its own route out (it answers 503
# and the line that needs it is skipped). A label prefix of its own keeps the
# Swarm services other people create on this engine out of its table.
ingress_routes() {
	local pfx=swarmingressbench. up="[\"127.0.0.1:$P_BACKEND\"]"
	cat <<-EOF
		services:
		  - name: bench
		    upstreams: $up
		    labels: {${pfx}host: localhost, ${pfx}redirect: "false"}
		  - name: bench-gzip
		    upstreams: $up
		    labels: {${pfx}host: localhost, ${pfx}redirect: "false", ${pfx}path: /gzip, ${pfx}compress: gzip}
		  - name: bench-eject
		    upstreams: $up
		    labels: {${pfx}host: localhost, ${pfx}redirect: "false", ${pfx}path: /eject, ${pfx}eject.after: "3", ${pfx}health.path: /small}
		  - name: bench-noeject
		    upstreams: $up
		    labels: {${pfx}host: localhost, ${pfx}redirect: "false", ${pfx}path: /noeject, ${pfx}eject.after: "0"}
	EOF
}

# start_peer PEER: starts it pinned and waits until it answers; records its
# pid in MAIN[PEER] and, for CPU time and memory, its pids in PIDS_OF[PEER]
# (comma-separated: nginx adds its workers). HTTP is on $(port_of PEER),
# HTTPS on the next port.
declare -A MAIN PIDS_OF
start_peer() {
	local peer=$1 dir=$WORK/$1 port
	port=$(port_of "$peer")
	rm -rf "$dir" && mkdir -p "$dir"
	case $peer in
	nginx | nginx-default)
		render "bench/$peer.conf.tmpl" "$dir/nginx.conf" "$dir" "$port"
		start "$peer" "${PIN_PROXY[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
		;;
	caddy)
		render bench/Caddyfile.tmpl "$dir/Caddyfile" "$dir" "$port"
		start "$peer" "${PIN_PROXY[@]}" env GOMAXPROCS="$PROXY_PROCS" HOME="$dir" \
			XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" \
			"$CADDY" run --config "$dir/Caddyfile" --adapter caddyfile
		;;
	traefik)
		render bench/traefik.yml.tmpl "$dir/traefik.yml" "$dir" "$port"
		render bench/traefik-dynamic.yml.tmpl "$dir/dynamic.yml" "$dir" "$port"
		start "$peer" "${PIN_PROXY[@]}" env GOMAXPROCS="$PROXY_PROCS" HOME="$dir" \
			"$TRAEFIK" --configfile="$dir/traefik.yml"
		;;
	ingress)
		mkdir -p "$dir/data" "$dir/certs"
		cp "$CERTS/bench.crt" "$CERTS/bench.key" "$dir/certs/"
		ingress_routes >"$dir/routes.yaml"
		# The certificate comes from INGRESS_CERTS_DIR; the ACME directory
		# points at a closed loopback port so that nothing leaves the machine.
		start "$peer" "${PIN_PROXY[@]}" env GOMAXPROCS="$PROXY_PROCS" \
			INGRESS_ROUTES_FILE="$dir/routes.yaml" INGRESS_LABEL_PREFIX=swarmingressbench. \
			INGRESS_HTTP_ADDR="127.0.0.1:$port" INGRESS_HTTPS_ADDR="127.0.0.1:$((port + 1))" \
			INGRESS_ADMIN_ADDR="127.0.0.1:$((port + 2))" INGRESS_DATA_DIR="$dir/data" \
			INGRESS_CERTS_DIR="$dir/certs" INGRESS_ACME_CA="https://127.0.0.1:1/directory" \
			DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/docker.sock}" \
			"$INGRESS" serve
		;;
	esac
	MAIN[$peer]=$LAST_PID
	if ! wait_ok "http://127.0.0.1:$port/small"; then
		note "$peer did not answer GET /small with 200 within 20s; last log lines:"
		tail -5 "$WORK/$peer.log" | indent
		stop_peer "$peer"
		return 1
	fi
	local c pids=$LAST_PID
	for c in $(children "$LAST_PID"); do pids+=",$c"; done
	PIDS_OF[$peer]=$pids
}

# restart_peer PEER: a fresh process, so that its idle memory is a true
# baseline and not a heap an earlier line grew.
restart_peer() {
	stop_peer "$1"
	start_peer "$1"
}

stop_peer() {
	if [[ -n ${MAIN[$1]:-} ]]; then stop "${MAIN[$1]}"; fi
	MAIN[$1]=
	PIDS_OF[$1]=
	sleep 0.5
}
