#!/usr/bin/env bash
# Peer comparison: gatehouse, nginx, haproxy and caddy proxying one upstream,
# each driven by wrk in interleaved rounds. See bench/README.md.
#
#   bench/run.sh [--duration 10s] [--rounds 3] [--conns "64 256"]
#                [--only "nginx haproxy caddy gatehouse"] [--warmup 2s]
#                [--path /bytes/1024] [--upstream auto|testupstream|nginx]
#                [--gatehouse-bin PATH] [--keep]
#
# The proxy under test runs alone on CPU 0 (taskset -c 0, one worker or
# GOMAXPROCS=1); wrk and the upstream share CPU 1. Besides wrk's req/s and
# p50/p99, the proxy's CPU time per request is taken from /proc/<pid>/stat
# (utime+stime of its whole process tree) over the measured window.
# The report goes to stdout and to bench/results/latest.md (rows: latest.tsv).
set -euo pipefail
export LC_ALL=C # one decimal point for $EPOCHREALTIME, awk and the tools

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
all_proxies="nginx haproxy caddy gatehouse gatehouse-policies gatehouse-openapi gatehouse-edge gatehouse-traced gatehouse-std gatehouse-std-policies"
# Every request carries this API key: gatehouse-policies (gatehouse with a
# key-auth policy and a rate-limit policy on its route) needs it, the
# others ignore it. Every request also comes from this origin, as a
# browser's would: gatehouse-edge (a cors and a transform policy on its
# route) answers it with CORS fields, the others ignore it.
# gatehouse-traced is gatehouse with OpenTelemetry traces on, 1% of
# requests sampled, exported by OTLP/HTTP to benchtool's otlpsink (on CPU
# 1, with wrk and the upstream), which decodes and counts them.
# Every gatehouse row runs on the binary's default HTTP/1.1 engine (the
# fast one, internal/h1, since issue 14) but gatehouse-std and
# gatehouse-std-policies: gatehouse and gatehouse-policies on net/http's
# (--engine std, as GATEHOUSE_ENGINE); skipped, saying so, with a binary
# that has no such flag (net/http is then its only engine, the gatehouse
# row's).
bench_key=bench-key-0123456789abcdef
bench_origin=https://app.example.com

duration=10s
rounds=3
conns="64 256"
only=$all_proxies
warmup=2s
path=/bytes/1024
upstream=auto
keep=0
gatehouse_bin= # empty: build ./cmd/gatehouse
cmdline=bench/run.sh
for a in "$@"; do
	case $a in *[[:space:]]* | "") cmdline+=" \"$a\"" ;; *) cmdline+=" $a" ;; esac
done

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
# Messages go to fd 3, our stderr as it was at the start, so that they are
# seen even when a signal trap runs inside a redirected command.
exec 3>&2
die() { echo "bench: $*" >&3; exit 1; }
log() { echo "bench: $*" >&3; }

while [ $# -gt 0 ]; do
	case $1 in
	--duration) duration=${2:?}; shift 2 ;;
	--rounds) rounds=${2:?}; shift 2 ;;
	--conns) conns=${2:?}; shift 2 ;;
	--only) only=${2:?}; shift 2 ;;
	--warmup) warmup=${2:?}; shift 2 ;;
	--path) path=${2:?}; shift 2 ;;
	--upstream) upstream=${2:?}; shift 2 ;;
	--gatehouse-bin) gatehouse_bin=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

# --- arguments ---------------------------------------------------------------
read -r -a proxies <<<"$only"
[ ${#proxies[@]} -gt 0 ] || die "--only names no proxy"
for p in "${proxies[@]}"; do
	case " $all_proxies " in *" $p "*) ;; *) die "--only: unknown proxy '$p' (known: $all_proxies)" ;; esac
done
read -r -a conns_list <<<"$conns"
[ ${#conns_list[@]} -gt 0 ] || die "--conns names no connection count"
for c in "${conns_list[@]}"; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "--conns: '$c' is not a positive number"; done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds: '$rounds' is not a positive number"
for d in "$duration" "$warmup"; do [[ $d =~ ^[1-9][0-9]*[smh]?$ ]] || die "'$d' is not a wrk duration (like 10s)"; done
[[ $path == /* ]] || die "--path must start with /"
case $upstream in auto | testupstream | nginx) ;; *) die "--upstream: auto, testupstream or nginx" ;; esac
want() { case " ${proxies[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
want_gatehouse() { case " ${proxies[*]} " in *" gatehouse"*) return 0 ;; esac; return 1; }
# The size the upstream answers for /bytes/N, checked through every proxy.
expect_size=
[[ $path =~ ^/bytes/([0-9]+)$ ]] && expect_size=${BASH_REMATCH[1]}

# --- tools -------------------------------------------------------------------
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (the proxy on CPU 0, wrk and the upstream on CPU 1); nproc says $(nproc)"
command -v go >/dev/null || die "needs Go (to build gatehouse, the upstream and benchtool)"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
command -v pgrep >/dev/null || missing+=(procps)
for p in nginx haproxy caddy; do
	if { want "$p" || { [ $p = nginx ] && [ "$upstream" != testupstream ]; }; } && ! command -v $p >/dev/null; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}' or run this as root"
	log "installing ${missing[*]} (apt-get)"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
# Every process started below inherits this; 256 connections through a proxy
# need some 520 descriptors in it.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 8192 ] || die "the open-files limit is $(ulimit -n); needs 8192 or more (ulimit -n)"

# --- temp dir and clean-up ----------------------------------------------------
tmp=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
chmod 755 "$tmp" # nginx workers run as nobody and read their temp dirs below
started=()       # pids this script started, each stopped on exit
wrk_pid=         # the wrk running now, if any
declare -A pid_of=() log_of=()

# tree PID: the pid and all its descendants, one a line.
tree() {
	echo "$1"
	local c
	for c in $(pgrep -P "$1" || true); do tree "$c"; done
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

stop_all() {
	local victims=() p i
	for p in "${started[@]}"; do
		alive "$p" && mapfile -t -O "${#victims[@]}" victims < <(tree "$p")
	done
	[ ${#victims[@]} -gt 0 ] || return 0
	kill -TERM "${victims[@]}" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		local left=()
		for p in "${victims[@]}"; do alive "$p" && left+=("$p"); done
		[ ${#left[@]} -eq 0 ] && break
		sleep 0.1
	done
	for p in "${victims[@]}"; do
		if alive "$p"; then
			log "pid $p did not stop on SIGTERM: SIGKILL"
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	for p in "${started[@]}"; do wait "$p" 2>/dev/null || true; done
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# Finish the clean-up even if a Ctrl-C also ended the reader of our
	# output (bench/run.sh | tee): writes then fail instead of killing us.
	trap '' PIPE
	set +e
	[ -z "$wrk_pid" ] || kill "$wrk_pid" 2>/dev/null
	stop_all
	if [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ] && [ ${#log_of[@]} -gt 0 ]; then
		local n
		for n in "${!log_of[@]}"; do
			[ -s "${log_of[$n]}" ] || continue
			echo "---- last lines of $n's log (${log_of[$n]}):" >&2
			tail -n 15 "${log_of[$n]}" >&2
		done
	fi
	if [ "$keep" = 1 ]; then
		log "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'trap "" PIPE; log interrupted || true; exit 130' INT
trap 'trap "" PIPE; log terminated || true; exit 143' TERM

# start NAME CPU COMMAND...: run COMMAND pinned to CPU, logging to the temp dir.
start() {
	local name=$1 cpu=$2
	shift 2
	log_of[$name]=$tmp/$name.log
	taskset -c "$cpu" "$@" >"${log_of[$name]}" 2>&1 </dev/null 3>&- &
	pid_of[$name]=$!
	started+=($!)
}

# wait_http NAME URL: wait until URL answers anything, while NAME runs.
wait_http() {
	local i
	for ((i = 0; i < 150; i++)); do
		alive "${pid_of[$1]}" || die "$1 exited during start-up"
		curl -s -o /dev/null --max-time 1 "$2" && return 0
		sleep 0.1
	done
	die "$1 does not answer at $2 after 15 s"
}

# check_get NAME URL: a GET of URL is 200 with the expected body size.
check_get() {
	local got want=200
	[ -n "$expect_size" ] && want="200 $expect_size"
	got=$(curl -s -o /dev/null --max-time 5 -H "X-API-Key: $bench_key" -w '%{http_code} %{size_download}' "$2" || true)
	[ -n "$expect_size" ] || got=${got%% *}
	[ "$got" = "$want" ] || { log "$1: GET $2 gave '$got', want '$want' (status size)"; return 1; }
}

# --- build --------------------------------------------------------------------
log "temp dir $tmp"
cd "$root"
go build -o "$tmp/benchtool" ./bench/benchtool
bt=$tmp/benchtool
if want_gatehouse; then
	if [ -n "$gatehouse_bin" ]; then
		[ -x "$gatehouse_bin" ] || die "--gatehouse-bin: $gatehouse_bin is not an executable"
		cp "$gatehouse_bin" "$tmp/gatehouse"
	else
		log "building gatehouse"
		go build -o "$tmp/gatehouse" ./cmd/gatehouse
	fi
	# The std engine's rows need a gatehouse that can choose it.
	if { want gatehouse-std || want gatehouse-std-policies; } && ! "$tmp/gatehouse" serve --help 2>/dev/null | grep -q -- '--engine'; then
		log "SKIPPING gatehouse-std and gatehouse-std-policies: this gatehouse has no --engine flag (net/http is its only engine, the gatehouse row's)"
		kept=()
		for p in "${proxies[@]}"; do case $p in gatehouse-std*) ;; *) kept+=("$p") ;; esac; done
		proxies=("${kept[@]}")
		[ ${#proxies[@]} -gt 0 ] || die "nothing left to measure"
	fi
fi
if [ "$upstream" = auto ]; then
	if [ -d cmd/testupstream ]; then upstream=testupstream; else upstream=nginx; fi
fi
if [ "$upstream" = testupstream ]; then
	[ -d cmd/testupstream ] || die "--upstream testupstream: there is no cmd/testupstream"
	log "building testupstream"
	go build -o "$tmp/testupstream" ./cmd/testupstream
fi

read -r -a ports <<<"$("$bt" freeports 19 | tr '\n' ' ')"
upport=${ports[0]}
declare -A port=([nginx]=${ports[1]} [haproxy]=${ports[2]} [caddy]=${ports[3]} [gatehouse]=${ports[4]}
	[gatehouse-policies]=${ports[6]} [gatehouse-openapi]=${ports[8]} [gatehouse-edge]=${ports[10]}
	[gatehouse-traced]=${ports[12]} [gatehouse-std]=${ports[15]} [gatehouse-std-policies]=${ports[17]})
declare -A admin_port=([gatehouse]=${ports[5]} [gatehouse-policies]=${ports[7]} [gatehouse-openapi]=${ports[9]}
	[gatehouse-edge]=${ports[11]} [gatehouse-traced]=${ports[13]} [gatehouse-std]=${ports[16]}
	[gatehouse-std-policies]=${ports[18]})
sinkport=${ports[14]} # gatehouse-traced's trace receiver
gh_admin=${ports[5]} # the admin API gh talks to

# fill TEMPLATE OUT: the template with @TMP@, @PORT@ and @UPPORT@ replaced.
fill() { sed -e "s|@TMP@|$tmp|g" -e "s|@PORT@|${3:-}|g" -e "s|@UPPORT@|$upport|g" "$1" >"$2"; }

# A Go program's defaults, whatever the caller's environment says. env
# takes its -u options before any VAR=VALUE (after one, "-u" would be run
# as the command): go_unset is for building such a line.
go_unset=(-u GOGC -u GOMEMLIMIT -u GODEBUG)
go_env=(env "${go_unset[@]}" GOMAXPROCS=1)

# --- upstream (CPU 1, with wrk) -------------------------------------------------
if [ "$upstream" = testupstream ]; then
	upstream_desc="cmd/testupstream (GOMAXPROCS=1)"
	start upstream 1 "${go_env[@]}" "$tmp/testupstream" -addr "127.0.0.1:$upport"
else
	upstream_desc="nginx serving static files (stand-in: there is no cmd/testupstream yet)"
	mkdir -p "$tmp/upstream/www/bytes"
	for n in 0 1024 ${expect_size:+$expect_size}; do head -c "$n" /dev/zero | tr '\0' x >"$tmp/upstream/www/bytes/$n"; done
	chmod -R a+rX "$tmp/upstream"
	fill "$here/conf/upstream-nginx.conf" "$tmp/upstream/nginx.conf"
	start upstream 1 nginx -e stderr -p "$tmp/upstream/" -c "$tmp/upstream/nginx.conf" -g 'daemon off;'
fi
wait_http upstream "http://127.0.0.1:$upport/"
check_get upstream "http://127.0.0.1:$upport$path" || die "the upstream does not serve $path"

# --- proxies (CPU 0) -------------------------------------------------------------
start_nginx() {
	mkdir -p "$tmp/nginx"
	fill "$here/conf/nginx.conf" "$tmp/nginx/nginx.conf" "${port[nginx]}"
	start nginx 0 nginx -e stderr -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" -g 'daemon off;'
}
start_haproxy() {
	mkdir -p "$tmp/haproxy"
	fill "$here/conf/haproxy.cfg" "$tmp/haproxy/haproxy.cfg" "${port[haproxy]}"
	start haproxy 0 haproxy -db -f "$tmp/haproxy/haproxy.cfg"
}
start_caddy() {
	mkdir -p "$tmp/caddy/data" "$tmp/caddy/config"
	fill "$here/conf/Caddyfile" "$tmp/caddy/Caddyfile" "${port[caddy]}"
	start caddy 0 "${go_env[@]}" HOME="$tmp/caddy" XDG_DATA_HOME="$tmp/caddy/data" XDG_CONFIG_HOME="$tmp/caddy/config" \
		caddy run --config "$tmp/caddy/Caddyfile" --adapter caddyfile
}
start_gatehouse() { start_gatehouse_as gatehouse; }
start_gatehouse-policies() { start_gatehouse_as gatehouse-policies; }
start_gatehouse-openapi() { start_gatehouse_as gatehouse-openapi; }
start_gatehouse-edge() { start_gatehouse_as gatehouse-edge; }
start_gatehouse-std() { start_gatehouse_as gatehouse-std GATEHOUSE_ENGINE=std; }
start_gatehouse-std-policies() { start_gatehouse_as gatehouse-std-policies GATEHOUSE_ENGINE=std; }
start_gatehouse-traced() {
	start otlpsink 1 "${go_env[@]}" "$bt" otlpsink -addr "127.0.0.1:$sinkport"
	wait_http otlpsink "http://127.0.0.1:$sinkport/"
	start_gatehouse_as gatehouse-traced OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sinkport" \
		OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01
}
start_gatehouse_as() { # NAME [VAR=VALUE...]: the environment's GATEHOUSE_* and OTEL_* are not passed on
	local name=$1 unset=() v
	shift
	for v in $(compgen -e | grep -E '^(GATEHOUSE|OTEL)_' || true); do unset+=(-u "$v"); done
	start "$name" 0 env "${go_unset[@]}" "${unset[@]}" GOMAXPROCS=1 "$@" GATEHOUSE_ADMIN_TOKEN=bench-token-0123456789abcdef0123456 \
		"$tmp/gatehouse" serve --data-dir "$tmp/$name.data" --admin-addr "127.0.0.1:${admin_port[$name]}" \
		--proxy-addr "127.0.0.1:${port[$name]}" --log-level warn --shutdown-timeout 1s
}

# gh METHOD PATH [BODY]: one admin API call; prints the status, leaves the
# body in $tmp/gh.body and the headers in $tmp/gh.headers.
gh() {
	local url=$2
	[[ $url == http* ]] || url="http://127.0.0.1:$gh_admin$url"
	curl -sS --max-time 10 -o "$tmp/gh.body" -D "$tmp/gh.headers" -w '%{http_code}' -X "$1" \
		-H 'Authorization: Bearer bench-token-0123456789abcdef0123456' -H 'Content-Type: application/json' \
		${3:+--data "$3"} "$url" || true # curl prints 000 when it gets no answer
}
gh_fail() { die "gatehouse: $1 answered $2: $(head -c 600 "$tmp/gh.body" 2>/dev/null)"; }

# configure_gatehouse NAME: one service and a catch-all route; for
# gatehouse-policies the route also requires an API key (auth) and counts
# every consumer's requests (a rate limit far above what wrk can send).
configure_gatehouse() {
	local st loc state i policies=
	gh_admin=${admin_port[$1]}
	wait_http "$1" "http://127.0.0.1:$gh_admin/admin/v1/openapi.json"
	st=$(gh POST /admin/v1/services "{\"id\":\"up\",\"name\":\"up\",\"url\":\"http://127.0.0.1:$upport\"}")
	[ "$st" = 201 ] || gh_fail "POST /admin/v1/services" "$st"
	if [ "$1" = gatehouse-policies ] || [ "$1" = gatehouse-std-policies ]; then
		st=$(gh POST /admin/v1/consumers '{"id":"bench","name":"bench"}')
		[ "$st" = 201 ] || gh_fail "POST /admin/v1/consumers" "$st"
		st=$(gh POST /admin/v1/consumers/bench/credentials "{\"type\":\"key-auth\",\"key\":\"$bench_key\"}")
		[ "$st" = 201 ] || gh_fail "POST /admin/v1/consumers/bench/credentials" "$st"
		st=$(gh POST /admin/v1/policies '{"id":"key","name":"key","type":"auth","config":{"key_auth":{}}}')
		[ "$st" = 201 ] || gh_fail "POST /admin/v1/policies (auth)" "$st"
		st=$(gh POST /admin/v1/policies '{"id":"rate","name":"rate","type":"rate-limit","config":{"requests":1000000000,"per":"second","by":"consumer"}}')
		[ "$st" = 201 ] || gh_fail "POST /admin/v1/policies (rate-limit)" "$st"
		policies=',"policies":["key","rate"]'
	fi
	if [ "$1" = gatehouse-edge ]; then
		# What a browser-facing API adds: CORS for its origin, a header
		# set on the way up and one on the way back.
		st=$(gh POST /admin/v1/policies "{\"id\":\"cors\",\"name\":\"cors\",\"type\":\"cors\",\"config\":{\"allow_origins\":[\"$bench_origin\"],\"expose_headers\":[\"ETag\"]}}")
		[ "$st" = 201 ] || gh_fail "POST /admin/v1/policies (cors)" "$st"
		st=$(gh POST /admin/v1/policies '{"id":"shape","name":"shape","type":"transform","config":{"request":{"headers":{"set":{"X-Tenant":"$(route.id)"}}},"response":{"headers":{"set":{"Cache-Control":"no-store"}}}}}')
		[ "$st" = 201 ] || gh_fail "POST /admin/v1/policies (transform)" "$st"
		policies=',"policies":["cors","shape"]'
	fi
	if [ "$1" = gatehouse-openapi ]; then
		# The route is imported from the upstream's description, with an
		# openapi policy: requests enforced, responses judged (report).
		st=$(curl -sS --max-time 10 -o "$tmp/gh.body" -w '%{http_code}' -X POST \
			-H 'Authorization: Bearer bench-token-0123456789abcdef0123456' -H 'Content-Type: application/yaml' \
			--data-binary "@$here/conf/testupstream-openapi.yaml" "http://127.0.0.1:$gh_admin/admin/v1/specs?id=up" || true)
		[ "$st" = 201 ] || gh_fail "POST /admin/v1/specs" "$st"
		st=$(gh POST /admin/v1/specs/up/import '{"service_id":"up"}')
		[ "$st" = 200 ] || gh_fail "POST /admin/v1/specs/up/import" "$st"
	else
		st=$(gh POST /admin/v1/routes "{\"name\":\"all\",\"paths\":[\"/*\"],\"service_id\":\"up\"$policies}")
		[ "$st" = 201 ] || gh_fail "POST /admin/v1/routes" "$st"
	fi
	st=$(gh POST /admin/v1/deployments '{}')
	case $st in
	202) ;;
	404 | 405 | 501)
		die "gatehouse: its admin API has no POST /admin/v1/deployments yet (HTTP $st), so its data plane cannot be configured.
       Measure the others meanwhile: bench/run.sh --only \"nginx haproxy caddy\"" ;;
	*) gh_fail "POST /admin/v1/deployments" "$st" ;;
	esac
	loc=$(tr -d '\r' <"$tmp/gh.headers" | awk 'tolower($1) == "location:" { print $2 }' | tail -n 1)
	[ -n "$loc" ] || die "gatehouse: POST /admin/v1/deployments answered 202 without a Location"
	for ((i = 0; i < 300; i++)); do
		st=$(gh GET "$loc")
		[ "$st" = 200 ] || gh_fail "GET $loc" "$st"
		state=$("$bt" jsonfield state <"$tmp/gh.body") || gh_fail "GET $loc (not JSON)" "$st"
		case $state in
		succeeded) break ;;
		failed) die "gatehouse: deployment $loc failed: $("$bt" jsonfield reason <"$tmp/gh.body")" ;;
		esac
		sleep 0.2
	done
	[ "$state" = succeeded ] || die "gatehouse: deployment $loc still '$state' after 60 s"
	log "gatehouse: deployment $loc succeeded"
}

for p in "${proxies[@]}"; do
	"start_$p"
	case $p in gatehouse*) configure_gatehouse "$p" ;; esac
	if [ "$p" = gatehouse-policies ] || [ "$p" = gatehouse-std-policies ]; then # the policies are really on
		st=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://127.0.0.1:${port[$p]}$path" || true)
		[ "$st" = 401 ] || die "$p: GET $path without the API key gave $st, want 401"
	fi
	if [ "$p" = gatehouse-edge ]; then # the policies are really on
		st=$(curl -s -o /dev/null -D "$tmp/edge.headers" --max-time 5 -H "Origin: $bench_origin" -w '%{http_code}' "http://127.0.0.1:${port[$p]}$path" || true)
		grep -qi "^access-control-allow-origin: $bench_origin" "$tmp/edge.headers" && grep -qi '^cache-control: no-store' "$tmp/edge.headers" ||
			die "gatehouse-edge: GET $path ($st) lacks the cors or the transform policy's fields"
	fi
	if [ "$p" = gatehouse-openapi ]; then # the document is really enforced
		st=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://127.0.0.1:${port[$p]}/bytes/ten" || true)
		[ "$st" = 400 ] || die "gatehouse-openapi: GET /bytes/ten gave $st, want 400"
	fi
	wait_http "$p" "http://127.0.0.1:${port[$p]}/"
	ok=0
	for ((i = 0; i < 25; i++)); do
		if check_get "$p" "http://127.0.0.1:${port[$p]}$path" 2>/dev/null; then ok=1; break; fi
		sleep 0.2
	done
	[ $ok = 1 ] || { check_get "$p" "http://127.0.0.1:${port[$p]}$path" || true; die "$p does not proxy $path correctly"; }
	log "$p: pid ${pid_of[$p]}, port ${port[$p]}, proxies $path"
done

# --- measurement ------------------------------------------------------------------
hz=$(getconf CLK_TCK)

# ticks PID...: utime+stime (fields 14 and 15 of /proc/PID/stat), summed.
ticks() {
	local p st f sum=0
	for p in "$@"; do
		{ read -r st <"/proc/$p/stat"; } 2>/dev/null || continue
		read -r -a f <<<"${st##*) }" # fields from 3 on: the name may hold spaces
		sum=$((sum + f[11] + f[12]))
	done
	echo "$sum"
}

# cpu0: busy ticks of CPU 0 so far (/proc/stat: user nice system idle
# iowait irq softirq steal ...; all but idle and iowait).
cpu0() { awk '$1 == "cpu0" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

results=$tmp/results.tsv
"$bt" record -header >"$results"
mkdir -p "$tmp/raw"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# run_wrk ARGS...: wrk on CPU 1, in the background so that a signal to this
# script is handled at once rather than when wrk is done.
run_wrk() {
	local rc=0
	taskset -c 1 wrk "$@" 3>&- &
	wrk_pid=$!
	wait "$wrk_pid" || rc=$?
	wrk_pid=
	return "$rc"
}

measure() { # measure ROUND PROXY CONNS
	local r=$1 p=$2 c=$3 url="http://127.0.0.1:${port[$2]}$path" out="$tmp/raw/$2-c$3-r$1.txt"
	local before after t0 t1 z0 z1 w0 w1 row
	local -a bp
	run_wrk -t1 -c"$c" -d"$warmup" -H "X-API-Key: $bench_key" -H "Origin: $bench_origin" "$url" >"$out.warmup" 2>&1 ||
		{ cat "$out.warmup" >&2; die "wrk (warm-up) failed against $p"; }
	before=$(tree "${pid_of[$p]}" | sort -n | tr '\n' ' ')
	read -r -a bp <<<"$before"
	w0=$EPOCHREALTIME
	t0=$(ticks "${bp[@]}")
	z0=$(cpu0)
	run_wrk -t1 -c"$c" -d"$duration" --latency -H "X-API-Key: $bench_key" -H "Origin: $bench_origin" "$url" >"$out" 2>&1 ||
		{ cat "$out" >&2; die "wrk failed against $p"; }
	t1=$(ticks "${bp[@]}")
	z1=$(cpu0)
	w1=$EPOCHREALTIME
	after=$(tree "${pid_of[$p]}" | sort -n | tr '\n' ' ')
	[ "$before" = "$after" ] || die "$p's processes changed during the run ($before-> $after): did a worker crash?"
	alive "${pid_of[$p]}" || die "$p exited during the run"
	row=$("$bt" record -round "$r" -proxy "$p" -conns "$c" -cpu-ticks $((t1 - t0)) -cpu0-ticks $((z1 - z0)) \
		-window "$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')" -clk-tck "$hz" "$out") ||
		{ cat "$out" >&2; die "cannot read wrk's output for $p"; }
	echo "$row" >>"$results"
	awk -F'\t' -v r="$r" -v R="$rounds" '{
		printf "bench: round %s/%s  %-18s c=%-4s %7.0f req/s  p50 %6.0f us  p99 %6.0f us  %5.1f us/req CPU  busy %3.0f%%  CPU 0 other %3.0f%%%s\n",
			r, R, $2, $3, $6, $7, $8, $14, $15 * 100, $16 * 100, ($9 + $10 > 0 ? "  ERRORS: " $9 " non-2xx, " $10 " socket" : "")
	}' <<<"$row" >&2
}

n=${#proxies[@]}
log "measuring: $rounds round(s) x $n prox(ies) x ${#conns_list[@]} connection count(s), $warmup warm-up + $duration each"
for ((r = 1; r <= rounds; r++)); do
	for ((k = 0; k < n; k++)); do
		p=${proxies[$(((k + r - 1) % n))]} # rotate the order each round
		for c in "${conns_list[@]}"; do measure "$r" "$p" "$c"; done
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
if want gatehouse-traced; then # the traces really left gatehouse
	sleep 6 # the batch processor exports every 5 s
	spans=$(curl -s --max-time 5 "http://127.0.0.1:$sinkport/spans" || true)
	[[ $spans =~ ^[1-9][0-9]*$ ]] || die "gatehouse-traced: the trace receiver got '$spans' spans, want some"
	# And at the rate asked for: a sampled request is two spans (server
	# and upstream), so 1% is some 0.02 spans per proxied request; at
	# 100% (the sampler not applied) it would be 2, and the row would
	# measure that instead.
	reqs=$(curl -s --max-time 5 "http://127.0.0.1:${admin_port[gatehouse-traced]}/metrics" |
		awk '/^gatehouse_proxy_requests_total[{ ]/ { s += $NF } END { printf "%d", s }')
	[[ $reqs =~ ^[1-9][0-9]*$ ]] || die "gatehouse-traced: its /metrics counted '$reqs' proxied requests"
	per=$(awk -v s="$spans" -v r="$reqs" 'BEGIN { printf "%.4f", s / r }')
	log "gatehouse-traced: the trace receiver got $spans spans for $reqs proxied requests ($per per request; 1% sampled is about 0.02)"
	awk -v p="$per" 'BEGIN { exit !(p < 0.1) }' ||
		die "gatehouse-traced: $per spans per request: the 1% sampler (OTEL_TRACES_SAMPLER_ARG) was not applied"
fi

# --- report --------------------------------------------------------------------------
baseline=nginx
want nginx || baseline=${proxies[0]}
ver() { "$@" 2>&1 | head -n 1 || true; }
versions=()
want nginx && versions+=("$(ver nginx -v | sed 's/^nginx version: //')")
want haproxy && versions+=("$(ver haproxy -v | awk '{print "HAProxy " $3}')")
want caddy && versions+=("Caddy $(ver caddy version | awk '{print $1}')")
want_gatehouse && versions+=("$(ver "$tmp/gatehouse" version)")
versions+=("wrk $(ver wrk -v | awk '{print $2}')" "$(go version | awk '{print $3}')")
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$root" status --porcelain 2>/dev/null)" ] || commit="$commit (with uncommitted changes)"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

report=$tmp/report.md
{
	echo "## Proxy benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- command: \`$cmdline\`"
	echo "- request: \`GET $path\` through each proxy to the upstream, $upstream_desc;" \
		"\`wrk -t1 -c<conns> -d$duration --latency\` after a $warmup warm-up, $rounds interleaved round(s), medians shown"
	echo "- pinning: the proxy under test alone on CPU 0 (one worker / one thread / GOMAXPROCS=1); wrk and the upstream on CPU 1"
	echo "- machine: $(nproc) CPUs, $cpu_model, Linux $(uname -r); load average $load_start at start, $load_end at end"
	echo "- versions: $(printf '%s, ' "${versions[@]}" | sed 's/, $//'); repository at $commit"
	echo
	"$bt" table -order "${proxies[*]}" -baseline "$baseline" "$results"
	echo "×$baseline is the figure divided by $baseline's in the same run: above 1.00x is better for req/s, worse for p50, p99 and CPU µs/req." \
		"CPU µs/req is the proxy's own CPU time (utime+stime of its processes) per request; proxy busy is that CPU time over the wall time:" \
		"below ~100% the proxy was not the bottleneck (wrk and the upstream on CPU 1 were), so rank by CPU µs/req, not req/s." \
		"CPU 0 other is the rest of CPU 0's busy time (softirq work, other programs): more than a few % means the machine was not quiet."
} >"$report"

mkdir -p "$here/results"
cp "$report" "$here/results/latest.md"
cp "$results" "$here/results/latest.tsv"
echo
cat "$report"
log "wrote bench/results/latest.md and bench/results/latest.tsv"
