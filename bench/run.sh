#!/usr/bin/env bash
# bench/run.sh: the ingress beside nginx, Caddy, a plain httputil proxy and the
# backend itself, on loopback, in one run, so that ratios are comparable.
#   1. small GET, keep-alive, wrk: req/s and ratios to nginx and Caddy
#   2. SSE_STREAMS concurrent SSE streams at one event/s: delay p50/p99/max,
#      errors, proxy RSS per stream
#   3. BIG_STREAMS streams through the ingress must hold without errors
#   4. nginx with a default proxy_pass vs the ingress: time to first SSE event
# Every server it starts is killed on exit, even on failure. Output goes to the
# terminal and to bench/out/ (gitignored).
#
# Knobs (environment): BENCH_GET_DURATION (10s), BENCH_SSE_STREAMS (2000),
# BENCH_SSE_WINDOW (20s), BENCH_BIG_STREAMS (8000), BENCH_PEERS
# ("direct plain nginx caddy ingress"), BENCH_PORT_BASE (18400),
# BENCH_BIG_PEER (ingress; another peer to validate the harness),
# BENCH_SKIP_BIG=1, BENCH_SKIP_DEMO=1, BENCH_INGRESS_BIN (a prebuilt ingress
# instead of building ./cmd/ingress).
set -euo pipefail

cd "$(dirname "$0")/.."
CADDY_VERSION=v2.11.9
GET_DURATION=${BENCH_GET_DURATION:-10s}
SSE_STREAMS=${BENCH_SSE_STREAMS:-2000}
SSE_WINDOW=${BENCH_SSE_WINDOW:-20s}
BIG_STREAMS=${BENCH_BIG_STREAMS:-8000}
BIG_PEER=${BENCH_BIG_PEER:-ingress}
PEERS=${BENCH_PEERS:-direct plain nginx caddy ingress}
PORT_BASE=${BENCH_PORT_BASE:-18400}
WRK_THREADS=2
WRK_CONNS=64
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/swarm-ingress-bench
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=bench/out
mkdir -p "$OUT"
LOG=$OUT/run-$STAMP.log
RESULTS=$OUT/results-$STAMP.txt
WORK=$(mktemp -d /tmp/swarm-ingress-bench.XXXXXX)
BIN=$WORK/bin
exec > >(tee "$LOG") 2>&1

PIDS=()
STEP_PID=
cleanup() {
	local pid
	[[ -n $STEP_PID ]] && kill -TERM "$STEP_PID" 2>/dev/null
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "bench: interrupted"; exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }

# ---- ports -------------------------------------------------------------------
P_BACKEND=$((PORT_BASE + 1))
P_PLAIN=$((PORT_BASE + 2))
P_NGINX=$((PORT_BASE + 3))
P_CADDY=$((PORT_BASE + 4))
P_INGRESS=$((PORT_BASE + 5))
P_INGRESS_TLS=$((PORT_BASE + 6))
P_INGRESS_ADMIN=$((PORT_BASE + 7))
P_NGINX_DEFAULT=$((PORT_BASE + 8))
check_ports() {
	local p
	for p in $(seq $((PORT_BASE + 1)) $((PORT_BASE + 8))); do
		if ss -Hltn "sport = :$p" | grep -q .; then
			echo "bench: port $p is in use; set BENCH_PORT_BASE to a free range" >&2
			exit 1
		fi
	done
}

# step SECONDS CMD...: runs a client step with a time limit; its output ends
# up in STEP_OUT. It runs in the background and is waited for, because bash
# runs the INT/TERM trap during `wait` but only after a $(...) finishes.
STEP_OUT=
step() {
	local secs=$1
	shift
	timeout "$secs" "$@" >"$WORK/step.out" 2>&1 &
	STEP_PID=$!
	wait "$STEP_PID" || true
	STEP_PID=
	STEP_OUT=$(<"$WORK/step.out")
}

# ---- tools -------------------------------------------------------------------
install_tools() {
	local need=()
	command -v wrk >/dev/null || need+=(wrk)
	command -v nginx >/dev/null || need+=(nginx-light)
	command -v curl >/dev/null || need+=(curl)
	command -v ss >/dev/null || need+=(iproute2)
	if ((${#need[@]})); then
		say "installing ${need[*]} (apt)"
		export DEBIAN_FRONTEND=noninteractive
		# Installing nginx would start the system's nginx on :80 where an init
		# system runs; the bench starts its own. policy-rc.d forbids starts for
		# the duration of the install (unless the machine already has one).
		local policy=/usr/sbin/policy-rc.d own_policy=
		if [[ ! -e $policy ]]; then
			printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
		fi
		local rc=0
		apt-get install -y -qq "${need[@]}" >/dev/null ||
			{ apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; } || rc=$?
		if [[ -n $own_policy ]]; then rm -f "$policy"; fi
		return "$rc"
	fi
}

CADDY=$CACHE/caddy-$CADDY_VERSION/caddy
build_caddy() {
	[[ -x $CADDY ]] && return 0
	say "building Caddy $CADDY_VERSION into $CADDY (once; cached)"
	# Outside our module: go install pkg@version ignores our go.mod.
	step 600 env GOBIN="$(dirname "$CADDY")" go install "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION"
	if [[ ! -x $CADDY ]]; then
		note "Caddy could not be built here; its row is skipped:"
		tail -5 <<<"$STEP_OUT" | sed 's/^/     /'
		return 1
	fi
}

HAVE_INGRESS=1
INGRESS_REV=
HAVE_CADDY=1
build() {
	say "building"
	mkdir -p "$BIN"
	go build -o "$BIN/" ./bench/cmd/backend ./bench/cmd/ssebench ./bench/cmd/plainproxy
	if [[ -n ${BENCH_INGRESS_BIN:-} ]]; then
		cp "$BENCH_INGRESS_BIN" "$BIN/ingress"
		INGRESS_REV="prebuilt $BENCH_INGRESS_BIN"
		note "ingress: using the $INGRESS_REV"
	elif go build -o "$BIN/ingress" ./cmd/ingress 2>"$WORK/ingress-build.log"; then
		INGRESS_REV="working tree at $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
		if [[ -n $(git status --porcelain -- pkg cmd 2>/dev/null) ]]; then
			INGRESS_REV+=" with uncommitted changes"
		fi
		note "ingress: built from the $INGRESS_REV"
	else
		HAVE_INGRESS=0
		note "go build ./cmd/ingress failed; ingress rows are skipped:"
		sed 's/^/     /' "$WORK/ingress-build.log" | head -20
	fi
	build_caddy || HAVE_CADDY=0
}

# ---- processes ---------------------------------------------------------------
# start NAME CMD...: run in the background, log to $WORK/NAME.log, remember pid.
LAST_PID=
start() {
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

stop() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
}

children() { cat "/proc/$1/task/$1/children" 2>/dev/null || pgrep -P "$1" || true; }

# wait_get PORT: until GET /small with Host bench.local answers 200 (10 s).
wait_get() {
	for _ in $(seq 100); do
		if [[ $(curl -s -o /dev/null -w '%{http_code}' -m 1 -H 'Host: bench.local' \
			"http://127.0.0.1:$1/small") == 200 ]]; then return 0; fi
		sleep 0.1
	done
	return 1
}

render() { # render TEMPLATE OUT PREFIX LISTEN_PORT
	sed -e "s|@PREFIX@|$3|g" -e "s|@LISTEN@|127.0.0.1:$4|g" -e "s|@LISTEN_PORT@|$4|g" \
		-e "s|@BACKEND@|127.0.0.1:$P_BACKEND|g" "$1" >"$2"
}

# start_peer PEER: starts it, sets PEER_PORT and PEER_PIDS (for RSS).
PEER_PORT=
PEER_PIDS=
PEER_MAIN=
start_peer() {
	case $1 in
	direct)
		PEER_PORT=$P_BACKEND PEER_PIDS=$BACKEND_PID PEER_MAIN=
		return 0
		;;
	plain)
		start plain "$BIN/plainproxy" -addr "127.0.0.1:$P_PLAIN" -upstream "http://127.0.0.1:$P_BACKEND"
		PEER_PORT=$P_PLAIN
		;;
	nginx | nginx-default)
		local dir=$WORK/$1 tmpl=bench/nginx.conf.tmpl port=$P_NGINX
		if [[ $1 == nginx-default ]]; then tmpl=bench/nginx-default.conf.tmpl port=$P_NGINX_DEFAULT; fi
		mkdir -p "$dir"
		render "$tmpl" "$dir/nginx.conf" "$dir" "$port"
		start "$1" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
		PEER_PORT=$port
		;;
	caddy)
		local dir=$WORK/caddy
		mkdir -p "$dir"
		render bench/Caddyfile.tmpl "$dir/Caddyfile" "$dir" "$P_CADDY"
		start caddy env HOME="$dir" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" \
			"$CADDY" run --config "$dir/Caddyfile" --adapter caddyfile
		PEER_PORT=$P_CADDY
		;;
	ingress)
		local dir=$WORK/ingress
		mkdir -p "$dir/data"
		# A label prefix of its own keeps the Swarm services other people
		# create on this engine out of its table (and their events from
		# swapping it mid-run); the routes file uses the same prefix.
		local pfx=swarmingressbench.
		cat >"$dir/routes.yaml" <<-EOF
			services:
			  - name: bench
			    upstreams: ["127.0.0.1:$P_BACKEND"]
			    labels:
			      ${pfx}host: bench.local
			      ${pfx}tls: "off"
		EOF
		start ingress env INGRESS_ROUTES_FILE="$dir/routes.yaml" INGRESS_LABEL_PREFIX=$pfx \
			INGRESS_HTTP_ADDR="127.0.0.1:$P_INGRESS" INGRESS_HTTPS_ADDR="127.0.0.1:$P_INGRESS_TLS" \
			INGRESS_ADMIN_ADDR="127.0.0.1:$P_INGRESS_ADMIN" INGRESS_DATA_DIR="$dir/data" \
			DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/docker.sock}" \
			"$BIN/ingress" serve
		PEER_PORT=$P_INGRESS
		;;
	esac
	PEER_MAIN=$LAST_PID
	if ! wait_get "$PEER_PORT"; then
		note "$1 did not answer GET /small with 200 within 10s; last log lines:"
		tail -5 "$WORK/$1.log" | sed 's/^/     /'
		stop "$PEER_MAIN"
		return 1
	fi
	# env(1) execs, so PEER_MAIN is the server itself; nginx adds its worker.
	PEER_PIDS=$PEER_MAIN
	local c
	for c in $(children "$PEER_MAIN"); do PEER_PIDS+=",$c"; done
}

stop_peer() {
	if [[ -n $PEER_MAIN ]]; then stop "$PEER_MAIN"; fi
	PEER_MAIN=
}

# ---- measurements ------------------------------------------------------------
declare -A RPS GETP99 GETCPU GETERR P50 P99 PMAX KB SSEERR SSECPU

# field KEY LINE: value of key=value in a RESULT line.
field() { grep -o "\b$1=[^ ]*" <<<"$2" | head -1 | cut -d= -f2; }

# to_ms VALUE: wrk latency ("812.00us", "1.20ms", "2.00s") in ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
		printf "%.2f", n }'
}

# cpu_ticks PIDS: summed utime+stime (clock ticks) of comma-separated pids.
cpu_ticks() {
	local pid total=0 f
	for pid in ${1//,/ }; do
		# Fields after "(comm) ": state is the 3rd field of the line, utime the 14th.
		read -ra f < <(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		total=$((total + f[11] + f[12]))
	done
	echo "$total"
}
HZ=$(getconf CLK_TCK)

run_get() { # run_get PEER
	local out t0 t1 n
	t0=$(cpu_ticks "$PEER_PIDS")
	step 60 wrk -t$WRK_THREADS -c$WRK_CONNS -d"$GET_DURATION" --latency \
		-H 'Host: bench.local' "http://127.0.0.1:$PEER_PORT/small"
	out=$STEP_OUT
	t1=$(cpu_ticks "$PEER_PIDS")
	sed 's/^/     /' <<<"$out"
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	GETCPU[$1]=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="${n:-0}" 'BEGIN {
		if (n > 0) printf "%.0f", t * 1e6 / hz / n; else print "-" }')
	note "proxy CPU: $(awk -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}') s for ${n:-0} requests = ${GETCPU[$1]} us/request"
	RPS[$1]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
	GETP99[$1]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	local non2xx sock
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	sock=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
	GETERR[$1]=$((${non2xx:-0} + ${sock:-0}))
	[[ -n ${RPS[$1]} ]] || { RPS[$1]=0; GETERR[$1]=fail; }
}

run_sse() { # run_sse PEER STREAMS RAMP KEY
	local out ramp=$3 key=${4:-$1} pids=$PEER_PIDS
	[[ $1 == direct ]] && pids=
	step 120 "$BIN/ssebench" -addr "127.0.0.1:$PEER_PORT" -n "$2" -ramp "$ramp" \
		-settle 2s -d "$SSE_WINDOW" -pids "$pids"
	out=$STEP_OUT
	sed 's/^/     /' <<<"$out"
	local res
	res=$(grep '^RESULT' <<<"$out" || true)
	if [[ -z $res ]]; then
		P50[$key]=- P99[$key]=- PMAX[$key]=- KB[$key]=- SSECPU[$key]=- SSEERR[$key]=fail
		return
	fi
	P50[$key]=$(field p50_ms "$res")
	P99[$key]=$(field p99_ms "$res")
	PMAX[$key]=$(field max_ms "$res")
	KB[$key]=$(field kb_per_stream "$res")
	SSECPU[$key]=$(field cpu_us_per_event "$res")
	if [[ -z $pids ]]; then KB[$key]=- SSECPU[$key]=-; fi
	SSEERR[$key]=$(field errors "$res")
}

declare -A FIRST
run_first_event() { # run_first_event PEER
	local out
	step 20 "$BIN/ssebench" -first-event -timeout 5s -addr "127.0.0.1:$PEER_PORT"
	out=$STEP_OUT
	sed 's/^/     /' <<<"$out"
	local res first events
	res=$(grep '^RESULT' <<<"$out" || true)
	first=$(field first_event_ms "$res")
	events=$(field events "$res")
	if [[ -z $res ]]; then
		FIRST[$1]="failed"
	elif [[ $(field head_ms "$res") == none ]]; then
		FIRST[$1]="no response head and no event within 5s"
	elif [[ $first == none ]]; then
		FIRST[$1]="no event within 5s (response head after $(field head_ms "$res") ms)"
	else
		FIRST[$1]="first event after $first ms, $events events within 5s"
	fi
}

# ---- run ---------------------------------------------------------------------
say "swarm-ingress bench $STAMP (UTC)"
note "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), shared;" \
	"load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
note "client, backend and proxy share these cores: compare ratios within one run, not absolute numbers"
install_tools
check_ports
build
note "$(go version); $(nginx -v 2>&1); wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}');" \
	"caddy $([[ $HAVE_CADDY == 1 ]] && echo "$CADDY_VERSION" || echo unavailable)"

start backend "$BIN/backend" -addr "127.0.0.1:$P_BACKEND"
BACKEND_PID=$LAST_PID
wait_get "$P_BACKEND" || { echo "bench: backend did not start" >&2; exit 1; }

RAN=()
for peer in $PEERS; do
	[[ $peer == caddy && $HAVE_CADDY == 0 ]] && continue
	[[ $peer == ingress && $HAVE_INGRESS == 0 ]] && continue
	say "$peer"
	if ! start_peer "$peer"; then continue; fi
	note "GET: wrk -t$WRK_THREADS -c$WRK_CONNS -d$GET_DURATION (keep-alive)"
	run_get "$peer"
	RAN+=("$peer")
	# A fresh process for the SSE run: its idle RSS is then a true baseline,
	# not a heap the GET run grew and that the streams would reuse unseen.
	stop_peer
	sleep 1
	if ! start_peer "$peer"; then continue; fi
	note "SSE: $SSE_STREAMS streams, 1 event/s each, ${SSE_WINDOW} window; RSS of pids $PEER_PIDS"
	run_sse "$peer" "$SSE_STREAMS" 3s
	stop_peer
	sleep 1
done

BIG_KEY="$BIG_PEER $BIG_STREAMS streams"
if [[ -z ${BENCH_SKIP_BIG:-} ]] && ! { [[ $BIG_PEER == ingress && $HAVE_INGRESS == 0 ]]; }; then
	say "$BIG_PEER with $BIG_STREAMS streams"
	note "$BIG_STREAMS, not more: a process may hold at most 20,000 open files here, and a proxy"
	note "holds two per stream (client side and upstream side)"
	if start_peer "$BIG_PEER"; then
		run_sse "$BIG_PEER" "$BIG_STREAMS" 8s "$BIG_KEY"
		stop_peer
	fi
fi

if [[ -z ${BENCH_SKIP_DEMO:-} ]]; then
	say "buffering: time to the first SSE event (backend sends one at once, then one per second)"
	for peer in nginx-default ingress; do
		[[ $peer == ingress && $HAVE_INGRESS == 0 ]] && continue
		note "$peer:"
		if start_peer "$peer"; then
			run_first_event "$peer"
			stop_peer
		fi
	done
fi

# ---- table -------------------------------------------------------------------
ratio() { # ratio A B: A/B with two decimals, or -
	[[ -n ${1:-} && -n ${2:-} && ${2:-0} != 0 ]] || { echo -; return; }
	awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'
}

label() {
	case $1 in
	direct) echo "backend direct" ;;
	plain) echo "plain httputil" ;;
	nginx) echo "nginx (SSE cfg)" ;;
	caddy) echo "caddy $CADDY_VERSION" ;;
	*) echo "$1" ;;
	esac
}

{
	echo "swarm-ingress bench $STAMP UTC, $(nproc) cores shared (client, backend and proxy on the same cores)"
	[[ -n $INGRESS_REV ]] && echo "ingress: $INGRESS_REV"
	echo "GET: wrk -t$WRK_THREADS -c$WRK_CONNS -d$GET_DURATION keep-alive /small. SSE: $SSE_STREAMS streams x 1 event/s, HTTP/1.1," \
		"${SSE_WINDOW} window;"
	echo "delay = receive time - send timestamp; KB/strm = (VmRSS with streams open - VmRSS idle) / streams."
	row() { printf '%-22s %8s %6s %6s %7s %7s | %7s %7s %7s %7s %7s | %7s\n' "$@"; }
	row '' '' '' '' GET GET SSE SSE SSE '' SSE errors
	row peer 'req/s' /nginx /caddy 'p99 ms' 'us/req' 'p50 ms' 'p99 ms' 'max ms' 'KB/strm' 'us/ev' get/sse
	for peer in "${RAN[@]}"; do
		row "$(label "$peer")" "${RPS[$peer]}" \
			"$(ratio "${RPS[$peer]}" "${RPS[nginx]:-}")" "$(ratio "${RPS[$peer]}" "${RPS[caddy]:-}")" \
			"${GETP99[$peer]}" "${GETCPU[$peer]:--}" "${P50[$peer]:--}" "${P99[$peer]:--}" "${PMAX[$peer]:--}" \
			"${KB[$peer]:--}" "${SSECPU[$peer]:--}" "${GETERR[$peer]}/${SSEERR[$peer]:--}"
	done
	if [[ -n ${P50[$BIG_KEY]:-} ]]; then
		row "$BIG_KEY" - - - - - "${P50[$BIG_KEY]}" "${P99[$BIG_KEY]}" "${PMAX[$BIG_KEY]}" \
			"${KB[$BIG_KEY]}" "${SSECPU[$BIG_KEY]}" "-/${SSEERR[$BIG_KEY]}"
		echo "($BIG_STREAMS streams: a process may hold at most 20,000 open files here; a proxy holds two per stream)"
	fi
	echo "us/req, us/ev: CPU time (user+sys, /proc/<pid>/stat) the proxy spent per request / per SSE event;"
	echo "less sensitive to the other load on the shared cores than req/s and delays."
	for peer in nginx-default ingress; do
		[[ -n ${FIRST[$peer]:-} ]] && printf 'first SSE event via %-14s %s\n' "$(label "$peer"):" "${FIRST[$peer]}"
	done
	echo
	echo "targets (ingress):"
	ok() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { if (v == "-" || v == "") { print "n/a"; exit }
		if (v !~ /^[0-9.]+$/) { print "MISSED"; exit }
		r = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print r ? "met" : "MISSED" }'; }
	r_nginx=$(ratio "${RPS[ingress]:-}" "${RPS[nginx]:-}")
	r_caddy=$(ratio "${RPS[ingress]:-}" "${RPS[caddy]:-}")
	echo "  req/s vs nginx      $r_nginx  (>= 0.70)  $(ok "$r_nginx" 0.70 '>=')"
	echo "  req/s vs caddy      $r_caddy  (>= 1.50)  $(ok "$r_caddy" 1.50 '>=')"
	echo "  SSE p99 ms          ${P99[ingress]:--}  (<= nginx ${P99[nginx]:--})  $(ok "${P99[ingress]:--}" "${P99[nginx]:-0}" '<=')"
	echo "  KB per stream       ${KB[ingress]:--}  (<= 25)  $(ok "${KB[ingress]:--}" 25 '<=')"
	if [[ $BIG_PEER == ingress && -n ${SSEERR[$BIG_KEY]:-} ]]; then
		echo "  $BIG_STREAMS streams errors  ${SSEERR[$BIG_KEY]:--}  (= 0)  $(ok "${SSEERR[$BIG_KEY]:--}" 0 '<=')"
	fi
} >"$RESULTS"

say "results (also in $RESULTS)"
cat "$RESULTS"
