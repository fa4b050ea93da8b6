#!/usr/bin/env bash
# bench/run.sh: swarm-ingress beside nginx, Caddy and Traefik on loopback, in
# one run, at equal cores, so that the ratios are comparable. Lines:
#   http   plain HTTP/1.1 keep-alive GET (wrk)
#   https  HTTPS keep-alive GET, TLS 1.3, ECDSA P-256 (wrk)
#   tls    new TLS connections: full handshake (no resumption) + one GET (bench/cmd/tlsconns)
#   h2     HTTP/2 multiplexed GET over TLS (h2load)
#   gzip   16 KiB text/html compressed with gzip by the proxy (wrk) - issue 13
#   sse    SSE over HTTPS: p99 delay per event at SSE_STREAMS and BIG_STREAMS
#          streams, memory per stream, CPU per event (bench/cmd/ssebench -tls)
#   idle   memory per idle HTTPS keep-alive connection (bench/cmd/idleconns)
#   eject  the ingress's GET req/s with outlier ejection and active health
#          checks on (their defaults) against eject.after=0 - issue 12
#   demo   time to the first SSE event through nginx's default proxy_pass
#          (buffering on) against the ingress
# For each: req/s (or the line's unit) and the proxy's CPU time per request
# (user+sys of its processes from /proc/<pid>/stat over the run / requests),
# with the ingress's ratio to each peer. A peer that cannot be built or
# started is a skipped column, never a failure; a line the ingress build does
# not support yet (a label key it does not know) is skipped with the reason.
#
# Every process it starts is stopped on exit, even on failure or Ctrl-C.
# Output goes to the terminal and to bench/out/ (gitignored).
#
# Knobs (environment):
#   BENCH_QUICK=1        a smoke run of a few minutes (short runs, fewer streams)
#   BENCH_ROUNDS         rounds of the keep-alive lines, medians reported (3; quick 1)
#   BENCH_DURATION       seconds per load step (10; quick 3)
#   BENCH_SSE_STREAMS    (2000; quick 500)   BENCH_BIG_STREAMS (8000; quick 2000)
#   BENCH_SSE_WINDOW     (20s; quick 4s)     BENCH_IDLE_CONNS (10000; quick 2000)
#   BENCH_PEERS          ("ingress nginx caddy traefik")
#   BENCH_LINES          ("http https tls h2 gzip sse idle eject demo")
#   BENCH_PORT_BASE      (18400; ports +1 and +10..+52 are used)
#   BENCH_INGRESS_BIN    a prebuilt ingress instead of building ./cmd/ingress
#   BENCH_TRAEFIK_SRC    a checkout of Traefik's source tag, if the module zip
#                        cannot be built
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
# shellcheck source=bench/peers.sh
source bench/peers.sh

CADDY_VERSION=v2.11.9
TRAEFIK_VERSION=v3.7.9
# Equal cores: the Go peers' GOMAXPROCS and nginx's worker_processes.
PROXY_PROCS=1
QUICK=${BENCH_QUICK:-}
if [[ -n $QUICK ]]; then
	ROUNDS=${BENCH_ROUNDS:-1} DUR=${BENCH_DURATION:-3}
	SSE_STREAMS=${BENCH_SSE_STREAMS:-500} BIG_STREAMS=${BENCH_BIG_STREAMS:-2000}
	SSE_WINDOW=${BENCH_SSE_WINDOW:-4s} IDLE_CONNS=${BENCH_IDLE_CONNS:-2000}
	EJECT_ROUNDS=2
else
	ROUNDS=${BENCH_ROUNDS:-3} DUR=${BENCH_DURATION:-10}
	SSE_STREAMS=${BENCH_SSE_STREAMS:-2000} BIG_STREAMS=${BENCH_BIG_STREAMS:-8000}
	SSE_WINDOW=${BENCH_SSE_WINDOW:-20s} IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
	EJECT_ROUNDS=5
fi
PEERS=${BENCH_PEERS:-ingress nginx caddy traefik}
LINES=${BENCH_LINES:-http https tls h2 gzip sse idle eject demo}
PORT_BASE=${BENCH_PORT_BASE:-18400}
P_BACKEND=$((PORT_BASE + 1))
WRK_CONNS=64
H2_CONNS=16 H2_STREAMS=32
TLS_WORKERS=16
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/swarm-ingress-bench
STAMP=$(date -u +%Y%m%d-%H%M%S)
T_START=$(date +%s)
OUT=bench/out
mkdir -p "$OUT" "$CACHE"
LOG=$OUT/run-$STAMP.log
RESULTS=$OUT/results-$STAMP.txt
WORK=$(mktemp -d /tmp/swarm-ingress-bench.XXXXXX)
BIN=$WORK/bin
CERTS=$WORK/certs
exec > >(tee "$LOG") 2>&1

trap cleanup EXIT
trap 'echo "bench: interrupted"; exit 130' INT TERM

declare -A FIRST
# peer_version PEER BIN VERSION: for the header.
peer_version() {
	if [[ " $PEERS " != *" $1 "* ]]; then echo "not in BENCH_PEERS"
	elif [[ -n $2 ]]; then echo "$3"
	else echo unavailable; fi
}
has_line() { [[ " $LINES " == *" $1 "* ]]; }

# ---- results -----------------------------------------------------------------
# R[line:peer:metric] holds space-separated values, one per round; the table
# shows their median.
declare -A R
put() { R[$1]="${R[$1]:-}${R[$1]:+ }$2"; }
median() {
	local v=${R[$1]:-}
	[[ -n $v ]] || { echo -; return; }
	tr ' ' '\n' <<<"$v" | awk '$1 ~ /^[0-9.]+$/' | sort -g | awk '{a[NR] = $1}
		END { if (NR == 0) { print "-"; exit }
		      if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ---- measurements ------------------------------------------------------------
# Each measures one peer once and records its figures under line:peer.

# wrk_line LINE PEER URL [WRK ARGS...]: req/s, CPU us per request, errors.
wrk_line() {
	local line=$1 peer=$2 url=$3 t0 t1 n out
	shift 3
	t0=$(cpu_ticks "${PIDS_OF[$peer]}")
	step $((DUR + 30)) wrk -t1 -c$WRK_CONNS -d"${DUR}s" --timeout 10s "$@" "$url"
	t1=$(cpu_ticks "${PIDS_OF[$peer]}")
	out=$STEP_OUT
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	local rps non2xx sock
	rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	sock=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
	put "$line:$peer:rate" "${rps:--}"
	put "$line:$peer:cpu" "$(us_per $((t1 - t0)) "$n")"
	put "$line:$peer:err" $((${non2xx:-0} + ${sock:-0}))
	note "$peer: ${rps:-?} req/s, $(us_per $((t1 - t0)) "$n") us CPU/req, errors $((${non2xx:-0} + ${sock:-0}))"
	[[ -n $rps ]] || tail -3 <<<"$out" | indent
}

h2_line() { # h2_line PEER
	local peer=$1 t0 t1 out n rps failed
	t0=$(cpu_ticks "${PIDS_OF[$peer]}")
	step $((DUR + 30)) h2load -t1 -c$H2_CONNS -m$H2_STREAMS -D "$DUR" "https://localhost:$(($(port_of "$peer") + 1))/small"
	t1=$(cpu_ticks "${PIDS_OF[$peer]}")
	out=$STEP_OUT
	n=$(awk '/^requests:/ {print $8}' <<<"$out")
	failed=$(awk '/^requests:/ {print $10 + $12 + $14}' <<<"$out")
	rps=$(awk '/^finished in/ {printf "%.0f", $4}' <<<"$out")
	if ! grep -q 'Application protocol: h2' <<<"$out"; then
		note "$peer: no HTTP/2 negotiated"
		rps=
	fi
	[[ ${rps:-0} != 0 ]] || rps=
	put "h2:$peer:rate" "${rps:--}"
	put "h2:$peer:cpu" "$(us_per $((t1 - t0)) "$n")"
	put "h2:$peer:err" "${failed:--}"
	note "$peer: ${rps:-?} req/s, $(us_per $((t1 - t0)) "$n") us CPU/req, failed ${failed:-?}"
	[[ -n $rps ]] || tail -3 <<<"$out" | indent
}

tls_line() { # tls_line PEER
	local peer=$1 t0 t1 res n
	t0=$(cpu_ticks "${PIDS_OF[$peer]}")
	step $((DUR + 30)) "$BIN/tlsconns" -addr "127.0.0.1:$(($(port_of "$peer") + 1))" -host localhost \
		-c $TLS_WORKERS -d "${DUR}s"
	t1=$(cpu_ticks "${PIDS_OF[$peer]}")
	res=$(grep '^RESULT' <<<"$STEP_OUT" || true)
	n=$(field conns "$res")
	put "tls:$peer:rate" "$(field rate "$res")"
	put "tls:$peer:cpu" "$(us_per $((t1 - t0)) "$n")"
	put "tls:$peer:err" "$(field errors "$res")"
	note "$peer: $(grep -v '^RESULT' <<<"$STEP_OUT" | tail -2 | tr '\n' ' '); $(us_per $((t1 - t0)) "$n") us CPU/conn"
}

# ramp_for STREAMS: how long to spread the opening of STREAMS TLS streams:
# 250 handshakes a second. The client does its half of every handshake on
# the load core beside the backend; 1,000 a second (8,000 in 8 s) left
# thousands of streams timing out in their handshake or response head with
# every peer on this machine.
ramp_for() { echo "$(($1 / 250 > 2 ? $1 / 250 : 2))s"; }

# sse_line LINE PEER STREAMS RAMP: a fresh peer, STREAMS HTTPS streams.
sse_line() {
	local line=$1 peer=$2 res
	restart_peer "$peer" || return 0
	step 300 "$BIN/ssebench" -tls -addr "127.0.0.1:$(($(port_of "$peer") + 1))" -host localhost \
		-n "$3" -ramp "$4" -settle 2s -d "$SSE_WINDOW" -pids "${PIDS_OF[$peer]}"
	res=$(grep '^RESULT' <<<"$STEP_OUT" || true)
	note "$peer:"
	{ grep -v '^RESULT' <<<"$STEP_OUT" || true; } | tail -8 | indent
	if [[ -z $res ]]; then
		note "$peer: no result"
		put "$line:$peer:err" fail
		return
	fi
	put "$line:$peer:rate" "$(field p99_ms "$res")"
	put "$line:$peer:p50" "$(field p50_ms "$res")"
	put "$line:$peer:kb" "$(field kb_per_stream "$res")"
	put "$line:$peer:cpu" "$(field cpu_us_per_event "$res")"
	put "$line:$peer:err" "$(field errors "$res")"
}

idle_line() { # idle_line PEER: a fresh peer, IDLE_CONNS idle HTTPS keep-alive connections.
	local peer=$1 res
	restart_peer "$peer" || return 0
	step 300 "$BIN/idleconns" -tls -addr "127.0.0.1:$(($(port_of "$peer") + 1))" -host localhost \
		-n "$IDLE_CONNS" -pids "${PIDS_OF[$peer]}"
	res=$(grep '^RESULT' <<<"$STEP_OUT" || true)
	put "idle:$peer:rate" "$(field kb_per_conn "$res")"
	put "idle:$peer:err" "$(field errors "$res")"
	note "$peer: $(grep -v '^RESULT' <<<"$STEP_OUT" | tail -3 | tr '\n' ' ')"
}

# gzip_ok PEER: the peer answers /gzip/text with Content-Encoding: gzip.
gzip_ok() {
	curl -s -o /dev/null -D - -m 2 -H 'Host: localhost' -H 'Accept-Encoding: gzip' \
		"http://127.0.0.1:$(port_of "$1")/gzip/text" | grep -qi '^content-encoding: *gzip'
}

# ---- run ---------------------------------------------------------------------
say "swarm-ingress bench $STAMP (UTC)${QUICK:+, BENCH_QUICK (smoke run: short, fewer streams)}"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
note "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), shared with other work;" \
	"load average before: $LOAD_BEFORE"
install_tools
setup_pinning
say "building"
mkdir -p "$BIN" "$CERTS"
go build -o "$BIN/" ./bench/cmd/backend ./bench/cmd/ssebench ./bench/cmd/tlsconns ./bench/cmd/idleconns
INGRESS= INGRESS_REV=
if [[ -n ${BENCH_INGRESS_BIN:-} ]]; then
	cp "$BENCH_INGRESS_BIN" "$BIN/ingress" && INGRESS=$BIN/ingress
	INGRESS_REV="prebuilt $BENCH_INGRESS_BIN"
elif go build -o "$BIN/ingress" ./cmd/ingress 2>"$WORK/ingress-build.log"; then
	INGRESS=$BIN/ingress
	INGRESS_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	[[ -z $(git status --porcelain -- pkg cmd internal 2>/dev/null) ]] || INGRESS_REV+=" with uncommitted changes"
else
	note "go build ./cmd/ingress failed; its column is skipped:"
	head -20 "$WORK/ingress-build.log" | indent
fi
CADDY= TRAEFIK=
[[ " $PEERS " == *" caddy "* ]] && build_caddy
[[ " $PEERS " == *" traefik "* ]] && build_traefik
make_cert "$CERTS"
check_ports

note "pinning: $PINNING; GOMAXPROCS=$PROXY_PROCS for the Go proxies, worker_processes $PROXY_PROCS for nginx (equal cores)"
note "ingress ${INGRESS_REV:-unavailable}; $(go version | cut -d' ' -f3); $(nginx -v 2>&1 | cut -d' ' -f3)" \
	"; caddy $(peer_version caddy "$CADDY" "$CADDY_VERSION"); traefik $(peer_version traefik "$TRAEFIK" "$TRAEFIK_VERSION")"
note "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); $(h2load --version 2>&1 | head -1); $(openssl version | cut -d' ' -f1-2)"

start backend "${PIN_LOAD[@]}" "$BIN/backend" -addr "127.0.0.1:$P_BACKEND"
wait_ok "http://127.0.0.1:$P_BACKEND/small" || { echo "bench: backend did not start" >&2; exit 1; }

# All peers run side by side (an idle one costs nothing); each load step
# goes to one of them, the peers in turn within a round.
RAN=()
for peer in $PEERS; do
	if ! available "$peer"; then
		note "$peer: unavailable, its column is skipped"
		continue
	fi
	say "starting $peer"
	start_peer "$peer" && RAN+=("$peer")
done
[[ ${#RAN[@]} -gt 0 ]] || { echo "bench: no peer started" >&2; exit 1; }

GZIP_PEERS=()
if has_line gzip; then
	for peer in "${RAN[@]}"; do
		if gzip_ok "$peer"; then
			GZIP_PEERS+=("$peer")
		elif [[ $peer == ingress ]]; then
			if grep -q 'unknown key \\"compress\\"' "$WORK/ingress.log"; then
				note "gzip: this ingress build does not know the compress label (issue 13): its gzip column is skipped"
			else
				note "gzip: the ingress's compress=gzip route answered $(http_status "http://127.0.0.1:$(port_of ingress)/gzip/text" \
					-H 'Host: localhost' -H 'Accept-Encoding: gzip') without Content-Encoding: gzip; its gzip column is skipped"
				{ grep -i 'compress' "$WORK/ingress.log" || true; } | tail -2 | cut -c1-300 | indent
			fi
		else
			note "gzip: $peer does not answer /gzip/text with gzip; skipped"
		fi
	done
fi

for round in $(seq "$ROUNDS"); do
	if has_line http; then
		say "round $round/$ROUNDS: plain HTTP/1.1 keep-alive, wrk -t1 -c$WRK_CONNS -d${DUR}s GET /small"
		for peer in "${RAN[@]}"; do wrk_line http "$peer" "http://127.0.0.1:$(port_of "$peer")/small" -H 'Host: localhost'; done
	fi
	if has_line https; then
		say "round $round/$ROUNDS: HTTPS keep-alive (TLS 1.3, ECDSA P-256), wrk -t1 -c$WRK_CONNS -d${DUR}s GET /small"
		for peer in "${RAN[@]}"; do wrk_line https "$peer" "https://localhost:$(($(port_of "$peer") + 1))/small"; done
	fi
	if has_line tls; then
		say "round $round/$ROUNDS: new TLS 1.3 connections (full handshake, no resumption) + one GET, $TLS_WORKERS workers, ${DUR}s"
		for peer in "${RAN[@]}"; do tls_line "$peer"; done
	fi
	if has_line h2; then
		say "round $round/$ROUNDS: HTTP/2 over TLS, h2load -c$H2_CONNS -m$H2_STREAMS -D ${DUR} GET /small"
		for peer in "${RAN[@]}"; do h2_line "$peer"; done
	fi
	if has_line gzip && ((${#GZIP_PEERS[@]})); then
		say "round $round/$ROUNDS: gzip by the proxy, 16 KiB text/html, wrk -t1 -c$WRK_CONNS -d${DUR}s, Accept-Encoding: gzip"
		for peer in "${GZIP_PEERS[@]}"; do
			wrk_line gzip "$peer" "http://127.0.0.1:$(port_of "$peer")/gzip/text" -H 'Host: localhost' -H 'Accept-Encoding: gzip'
		done
	fi
done

if has_line sse; then
	say "SSE over HTTPS: $SSE_STREAMS streams, 1 event/s each, ${SSE_WINDOW} window (fresh process per peer)"
	for peer in "${RAN[@]}"; do sse_line sse "$peer" "$SSE_STREAMS" "$(ramp_for "$SSE_STREAMS")"; done
	say "SSE over HTTPS: $BIG_STREAMS streams (a process may hold 20,000 open files here; a proxy holds two per stream)"
	for peer in "${RAN[@]}"; do sse_line sse_big "$peer" "$BIG_STREAMS" "$(ramp_for "$BIG_STREAMS")"; done
fi

if has_line idle; then
	say "idle HTTPS keep-alive connections: $IDLE_CONNS, each served one GET, then idle 5s (fresh process per peer)"
	for peer in "${RAN[@]}"; do idle_line "$peer"; done
fi

EJECT_NOTE=
if has_line eject && [[ -n ${MAIN[ingress]:-} ]]; then
	say "issue 12: ingress GET req/s, ejection + active health checks on (eject.after=3, health.path) vs eject.after=0"
	p=$(port_of ingress)
	if [[ $(http_status "http://127.0.0.1:$p/eject/small" -H 'Host: localhost') != 200 ||
		$(http_status "http://127.0.0.1:$p/noeject/small" -H 'Host: localhost') != 200 ]]; then
		EJECT_NOTE="skipped: this ingress build refuses the eject.after/health.path labels (issue 12 not landed)"
		note "$EJECT_NOTE"
		{ grep -E 'unknown key \\"(eject|health)' "$WORK/ingress.log" || true; } | tail -2 | cut -c1-300 | indent
	else
		for round in $(seq "$EJECT_ROUNDS"); do
			note "round $round/$EJECT_ROUNDS"
			wrk_line noeject ingress "http://127.0.0.1:$p/noeject/small" -H 'Host: localhost'
			wrk_line eject ingress "http://127.0.0.1:$p/eject/small" -H 'Host: localhost'
		done
	fi
fi

if has_line demo && command -v nginx >/dev/null && [[ -n ${MAIN[ingress]:-} ]]; then
	say "buffering: time to the first SSE event (the backend sends one at once, then one per second)"
	for peer in nginx-default ingress; do
		if [[ $peer == nginx-default ]]; then start_peer nginx-default || continue; fi
		step 20 "$BIN/ssebench" -first-event -timeout 5s -addr "127.0.0.1:$(port_of "$peer")" -host localhost
		res=$(grep '^RESULT' <<<"$STEP_OUT" || true)
		if [[ -z $res ]]; then
			FIRST[$peer]="failed"
		elif [[ $(field head_ms "$res") == none ]]; then
			FIRST[$peer]="no response head and no event within 5s"
		elif [[ $(field first_event_ms "$res") == none ]]; then
			FIRST[$peer]="no event within 5s (response head after $(field head_ms "$res") ms)"
		else
			FIRST[$peer]="first event after $(field first_event_ms "$res") ms"
		fi
		note "$peer: ${FIRST[$peer]}"
		if [[ $peer == nginx-default ]]; then stop_peer nginx-default; fi
	done
fi

# ---- table -------------------------------------------------------------------
ratio() { # ratio A B: A/B with two decimals, or -
	[[ ${1:--} != - && ${2:--} != - && ${2:-0} != 0 ]] || { echo -; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}
COLS=(ingress nginx caddy traefik)
label() {
	case $1 in
	caddy) echo "caddy ${CADDY_VERSION#v}" ;;
	traefik) echo "traefik ${TRAEFIK_VERSION#v}" ;;
	*) echo "$1" ;;
	esac
}
row() { printf '%-34s %9s %9s %13s %13s | %6s %6s %8s\n' "$@"; }
# table_row TITLE KEY METRIC: the medians of each peer and the ingress's ratios.
table_row() {
	local title=$1 key=$2 metric=$3 v=() p
	for p in "${COLS[@]}"; do v+=("$(median "$key:$p:$metric")"); done
	row "$title" "${v[@]}" "$(ratio "${v[0]}" "${v[1]}")" "$(ratio "${v[0]}" "${v[2]}")" "$(ratio "${v[0]}" "${v[3]}")"
}
errors_of() { # errors_of KEY: errors summed over peers and rounds
	local p e total=0
	for p in "${COLS[@]}"; do
		for e in ${R[$1:$p:err]:-}; do
			[[ $e =~ ^[0-9]+$ ]] && total=$((total + e)) || total="$total+$e"
		done
	done
	echo "$total"
}

T_END=$(date +%s)
{
	echo "swarm-ingress bench $STAMP UTC${QUICK:+ (BENCH_QUICK smoke run)}; took $(((T_END - T_START) / 60))m$(((T_END - T_START) % 60))s"
	echo "machine: $(nproc) cores shared with other work; load average (1, 5, 15 min) before the run $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "figures are noisy: other people's tests run on the same cores; compare ratios within one run; CPU per request moves least"
	echo "pinning: $PINNING; GOMAXPROCS=$PROXY_PROCS (Go proxies) = nginx worker_processes $PROXY_PROCS"
	echo "ingress ${INGRESS_REV:-unavailable}; medians of $ROUNDS round(s) of ${DUR}s; same backend, same ECDSA P-256 certificate; client offers X25519 only"
	echo "access log: nginx and ingress on, Caddy and Traefik off (their defaults)"
	echo
	row "line" "$(label ingress)" "$(label nginx)" "$(label caddy)" "$(label traefik)" "/nginx" "/caddy" "/traefik"
	if has_line http; then
		table_row "HTTP/1.1 keep-alive req/s" http rate
		table_row "  CPU us/req" http cpu
	fi
	if has_line https; then
		table_row "HTTPS keep-alive req/s" https rate
		table_row "  CPU us/req" https cpu
	fi
	if has_line tls; then
		table_row "new TLS conns/s (handshake+GET)" tls rate
		table_row "  CPU us/conn" tls cpu
	fi
	if has_line h2; then
		table_row "HTTP/2 multiplexed req/s" h2 rate
		table_row "  CPU us/req" h2 cpu
	fi
	if has_line gzip; then
		table_row "gzip 16 KiB html req/s" gzip rate
		table_row "  CPU us/req" gzip cpu
	fi
	if has_line sse; then
		table_row "SSE $SSE_STREAMS HTTPS p99 ms (lower)" sse rate
		table_row "  p50 ms" sse p50
		table_row "  KB per stream" sse kb
		table_row "  CPU us/event" sse cpu
		table_row "SSE $BIG_STREAMS HTTPS p99 ms (lower)" sse_big rate
		table_row "  p50 ms" sse_big p50
		table_row "  KB per stream" sse_big kb
		table_row "  CPU us/event" sse_big cpu
	fi
	if has_line idle; then
		table_row "idle HTTPS keep-alive KB/conn" idle rate
	fi
	echo "(errors, all peers and rounds: http $(errors_of http), https $(errors_of https), tls $(errors_of tls)," \
		"h2 $(errors_of h2), gzip $(errors_of gzip), sse $(errors_of sse)/$(errors_of sse_big), idle $(errors_of idle))"
	if has_line gzip; then
		echo "gzip: nginx gzip_comp_level 1 (its default); Caddy and Traefik at their default levels; ingress compress=gzip (its level)" \
			"$([[ " ${GZIP_PEERS[*]} " == *" ingress "* ]] || echo "- ingress skipped: this build does not compress (see the log)")"
	fi
	if has_line eject; then
		echo
		if [[ -n $EJECT_NOTE ]]; then
			echo "issue 12 ejection line: $EJECT_NOTE"
		elif [[ -n ${R[eject:ingress:rate]:-} ]]; then
			on=$(median eject:ingress:rate) off=$(median noeject:ingress:rate) ng=$(median http:nginx:rate)
			echo "issue 12: ingress GET req/s, medians of $EJECT_ROUNDS alternated rounds:"
			echo "  eject.after=0:                      $off req/s, $(median noeject:ingress:cpu) us/req, ratio to nginx $(ratio "$off" "$ng")"
			echo "  ejection + health checks (default): $on req/s, $(median eject:ingress:cpu) us/req, ratio to nginx $(ratio "$on" "$ng")"
			echo "  change of the ratio to nginx: $(awk -v a="$on" -v b="$off" 'BEGIN {printf "%+.1f%%", (a / b - 1) * 100}') (goal: no drop of more than 3%);" \
				"change of CPU per request: $(awk -v a="$(median eject:ingress:cpu)" -v b="$(median noeject:ingress:cpu)" \
					'BEGIN { if (b > 0) printf "%+.1f%%", (a / b - 1) * 100; else print "-" }')"
			echo "  (req/s of two routes of one process measured in turn on a shared machine moves by more than 3% from"
			echo "  round to round; CPU per request is the steadier of the two)"
		fi
	fi
	if [[ -n ${FIRST[ingress]:-} ]]; then
		echo
		echo "buffering: nginx default proxy_pass: ${FIRST[nginx-default]:-n/a}; ingress: ${FIRST[ingress]}"
	fi
	if [[ -n ${R[http:ingress:rate]:-} && -n ${R[http:nginx:rate]:-} ]]; then
		echo
		echo "goals of issue 14 (ingress, this run):"
		goal() { # goal TEXT VALUE OP TARGET
			local verdict
			[[ $2 != - ]] || return 0
			if [[ $2 != - ]]; then
				verdict=$(awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN {
					r = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print r ? "met" : "MISSED" }')
			fi
			printf '  %-44s %8s  (%s %s)  %s\n' "$1" "$2" "$3" "$4" "$verdict"
		}
		goal "CPU/req vs nginx, plain HTTP" "$(ratio "$(median http:ingress:cpu)" "$(median http:nginx:cpu)")" '<=' 1.5
		goal "CPU/req vs nginx, HTTPS" "$(ratio "$(median https:ingress:cpu)" "$(median https:nginx:cpu)")" '<=' 1.5
		for l in http https h2; do
			goal "$l req/s vs nginx" "$(ratio "$(median "$l:ingress:rate")" "$(median "$l:nginx:rate")")" '>=' 0.8
			goal "$l req/s vs caddy" "$(ratio "$(median "$l:ingress:rate")" "$(median "$l:caddy:rate")")" '>=' 2
			goal "$l req/s vs traefik" "$(ratio "$(median "$l:ingress:rate")" "$(median "$l:traefik:rate")")" '>=' 1.3
		done
		goal "new TLS conns/s vs nginx" "$(ratio "$(median tls:ingress:rate)" "$(median tls:nginx:rate)")" '>=' 1.0
		goal "SSE p99 vs nginx ($SSE_STREAMS streams)" "$(ratio "$(median sse:ingress:rate)" "$(median sse:nginx:rate)")" '<=' 1.0
		goal "KB per stream ($SSE_STREAMS streams)" "$(median sse:ingress:kb)" '<=' 20
		goal "idle KB/conn vs nginx" "$(ratio "$(median idle:ingress:rate)" "$(median idle:nginx:rate)")" '<=' 2
	fi
} >"$RESULTS"

say "results (also in $RESULTS)"
cat "$RESULTS"
