# bench/lib.sh: helpers for bench/run.sh (sourced, not run): output, processes
# that are always cleaned up, CPU pinning, CPU time and memory from /proc, the
# tools the bench installs or builds once.
# shellcheck shell=bash

say() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
indent() { sed 's/^/     /'; }

# ---- processes ---------------------------------------------------------------
# Every process the bench starts is in PIDS and is stopped by cleanup, which
# run.sh installs as the EXIT trap: also on failure and on Ctrl-C.
PIDS=()
STEP_PID=
cleanup() {
	local pid
	if [[ -n $STEP_PID ]]; then kill -TERM "$STEP_PID" 2>/dev/null || true; fi
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	[[ -n ${WORK:-} && -d $WORK ]] && rm -rf "$WORK"
}

# Pinning: the proxy under test on CPU0, the load generator and the backend
# on CPU1, so that the proxy has one core of its own (as nginx's single worker
# does) and the client does not steal from it. With fewer than 2 CPUs nothing
# is pinned.
PIN_PROXY=()
PIN_LOAD=()
setup_pinning() {
	if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
		PIN_PROXY=(taskset -c 0)
		PIN_LOAD=(taskset -c 1)
		PINNING="proxy on CPU0; load generator and backend on CPU1 (taskset)"
	else
		PINNING="not pinned (needs 2 CPUs and taskset)"
	fi
}

# start NAME CMD...: run in the background, log to $WORK/NAME.log, remember
# the pid in LAST_PID. Commands are exec'd through env/taskset, so the pid is
# the server's own.
LAST_PID=
start() {
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# stop PID: TERM, then KILL after 5 s.
stop() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
}

children() { cat "/proc/$1/task/$1/children" 2>/dev/null || pgrep -P "$1" || true; }

# step SECONDS CMD...: runs a client step, pinned with the load, with a time
# limit; its output ends up in STEP_OUT. It runs in the background and is
# waited for, because bash runs the INT/TERM trap during `wait` but only after
# a $(...) finishes.
STEP_OUT=
step() {
	local secs=$1
	shift
	timeout "$secs" "${PIN_LOAD[@]}" "$@" >"$WORK/step.out" 2>&1 &
	STEP_PID=$!
	wait "$STEP_PID" || true
	STEP_PID=
	STEP_OUT=$(<"$WORK/step.out")
}

# http_status URL [CURL ARGS...]: the status code (000 if none).
http_status() {
	local url=$1
	shift
	curl -sk -o /dev/null -w '%{http_code}' -m 2 "$@" "$url" || true
}

# wait_ok URL: until GET URL with Host: localhost answers 200 (20 s).
wait_ok() {
	for _ in $(seq 200); do
		[[ $(http_status "$1" -H 'Host: localhost') == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}

# ---- /proc -------------------------------------------------------------------
HZ=$(getconf CLK_TCK)

# cpu_ticks PIDS: summed utime+stime (clock ticks) of comma-separated pids
# (all threads of each process).
cpu_ticks() {
	local pid total=0 f
	for pid in ${1//,/ }; do
		# After "(comm) ": f[0] is field 3 (state); utime and stime are 14 and 15.
		read -ra f < <(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		total=$((total + f[11] + f[12]))
	done
	echo "$total"
}

# us_per TICKS N: CPU microseconds per unit of work, or - without work.
us_per() {
	awk -v t="$1" -v hz="$HZ" -v n="${2:-0}" 'BEGIN {
		if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "-" }'
}

# field KEY LINE: value of key=value in a RESULT line.
field() { { grep -o "\b$1=[^ ]*" <<<"$2" || true; } | head -1 | cut -d= -f2; }

# ---- tools -------------------------------------------------------------------
# install_tools: wrk, nginx, h2load, curl, ss, taskset, openssl from apt when
# missing. Installing nginx would start the system's nginx where an init
# system runs; policy-rc.d forbids starts for the duration of the install.
install_tools() {
	local need=()
	command -v wrk >/dev/null || need+=(wrk)
	command -v nginx >/dev/null || need+=(nginx-light)
	command -v h2load >/dev/null || need+=(nghttp2-client)
	command -v curl >/dev/null || need+=(curl)
	command -v ss >/dev/null || need+=(iproute2)
	command -v taskset >/dev/null || need+=(util-linux)
	command -v openssl >/dev/null || need+=(openssl)
	((${#need[@]})) || return 0
	say "installing ${need[*]} (apt)"
	export DEBIAN_FRONTEND=noninteractive
	local policy=/usr/sbin/policy-rc.d own_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
	fi
	local rc=0
	apt-get install -y -qq "${need[@]}" >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; } || rc=$?
	if [[ -n $own_policy ]]; then rm -f "$policy"; fi
	if ((rc)); then note "apt-get install failed ($rc); the lines that need them are skipped"; fi
	return 0
}

# build_caddy: go install of the pinned Caddy into the cache, once. A
# failure leaves CADDY unset (its column is skipped).
build_caddy() {
	local bin=$CACHE/caddy-$CADDY_VERSION/caddy
	if [[ ! -x $bin ]]; then
		say "building Caddy $CADDY_VERSION into $bin (once; cached)"
		# Outside our module: go install pkg@version ignores our go.mod.
		step 900 env GOBIN="$(dirname "$bin")" go install "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION"
		if [[ ! -x $bin ]]; then
			note "Caddy could not be built here; its column is skipped:"
			tail -5 <<<"$STEP_OUT" | indent
			return 0
		fi
	fi
	CADDY=$bin
}

# build_traefik: Traefik from its $TRAEFIK_VERSION source, once, into the
# cache. The source is $BENCH_TRAEFIK_SRC (a checkout of the tag) or else the
# module from the module proxy. The web UI is not needed: an empty
# webui/static/index.html lets its embed compile. The module zip lacks the
# nested module pkg/config/dynamic/ext that go.mod replaces with a directory;
# without it the build cannot work and the column is skipped with that reason.
build_traefik() {
	local bin=$CACHE/traefik-$TRAEFIK_VERSION/traefik
	if [[ ! -x $bin ]]; then
		say "building Traefik $TRAEFIK_VERSION into $bin (once; cached)"
		local src=$CACHE/traefik-$TRAEFIK_VERSION-src
		if [[ -n ${BENCH_TRAEFIK_SRC:-} ]]; then
			rm -rf "$src" && cp -r "$BENCH_TRAEFIK_SRC" "$src"
		elif [[ ! -d $src ]]; then
			local dir
			dir=$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json \
				"github.com/traefik/traefik/v3@$TRAEFIK_VERSION" 2>/dev/null |
				awk -F'"' '/"Dir":/ {print $4}') || true
			if [[ -z $dir || ! -d $dir ]]; then
				note "the Traefik module could not be downloaded; its column is skipped"
				return 0
			fi
			cp -r "$dir" "$src" && chmod -R u+w "$src"
		fi
		if [[ ! -f $src/pkg/config/dynamic/ext/go.mod ]]; then
			note "Traefik's source lacks pkg/config/dynamic/ext (the module zip leaves nested modules out);"
			note "set BENCH_TRAEFIK_SRC to a checkout of tag $TRAEFIK_VERSION. Its column is skipped."
			return 0
		fi
		mkdir -p "$src/webui/static" "$(dirname "$bin")"
		[[ -e $src/webui/static/index.html ]] || : >"$src/webui/static/index.html"
		step 1800 bash -c "cd '$src' && go build -o '$bin' ./cmd/traefik"
		if [[ ! -x $bin ]]; then
			note "Traefik could not be built here; its column is skipped:"
			tail -5 <<<"$STEP_OUT" | indent
			return 0
		fi
	fi
	TRAEFIK=$bin
}

# make_cert DIR: one self-signed ECDSA P-256 certificate for localhost, used
# by every peer.
make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$1/bench.key" -out "$1/bench.crt" -days 2 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost" 2>/dev/null
}
