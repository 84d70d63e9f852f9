#!/usr/bin/env bash
# System calls per proxied request: nginx, gatehouse on its std engine
# (net/http) and on its fast one (internal/h1), each proxying one upstream.
# See bench/README.md.
#
#   bench/syscalls.sh [--requests 20000] [--conns 16] [--path /bytes/1024]
#                     [--only "nginx gatehouse-std gatehouse-fast"]
#                     [--gatehouse-bin PATH] [--keep]
#
# For each proxy: start it, warm it up, attach `strace -c -f` to its
# processes (every thread), send exactly --requests GETs over --conns
# kept-alive connections (benchtool load), detach, and divide the proxy's
# system calls by the requests. strace slows the proxy a great deal: the
# figure is a count, not a time. The upstream's own calls are not counted.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
all="nginx gatehouse-std gatehouse-fast"
requests=20000
conns=16
path=/bytes/1024
only=$all
gatehouse_bin=
keep=0

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "syscalls: $*" >&2; exit 1; }
log() { echo "syscalls: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--requests) requests=${2:?}; shift 2 ;;
	--conns) conns=${2:?}; shift 2 ;;
	--path) path=${2:?}; shift 2 ;;
	--only) only=${2:?}; shift 2 ;;
	--gatehouse-bin) gatehouse_bin=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
[[ $requests =~ ^[1-9][0-9]*$ ]] || die "--requests: '$requests' is not a positive number"
[[ $conns =~ ^[1-9][0-9]*$ ]] || die "--conns: '$conns' is not a positive number"
[[ $path == /* ]] || die "--path must start with /"
read -r -a proxies <<<"$only"
[ ${#proxies[@]} -gt 0 ] || die "--only names no proxy"
for p in "${proxies[@]}"; do
	case " $all " in *" $p "*) ;; *) die "--only: unknown proxy '$p' (known: $all)" ;; esac
done
for t in strace curl go; do command -v $t >/dev/null || die "needs $t"; done
want_nginx=0
for p in "${proxies[@]}"; do [ "$p" = nginx ] && want_nginx=1; done
[ $want_nginx = 0 ] || command -v nginx >/dev/null || die "needs nginx (apt-get install nginx)"
ulimit -n 65536 2>/dev/null || true

tmp=$(mktemp -d /tmp/gatehouse-syscalls.XXXXXX)
chmod 755 "$tmp"
started=()
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	set +e
	for p in "${started[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${started[@]}"; do wait "$p" 2>/dev/null; done
	if [ "$rc" != 0 ]; then
		for f in "$tmp"/*.log; do [ -s "$f" ] && { echo "---- $f:" >&2; tail -n 15 "$f" >&2; }; done
	fi
	if [ "$keep" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME COMMAND...: run COMMAND in the background, logging to the temp dir.
start() {
	local name=$1
	shift
	"$@" >"$tmp/$name.log" 2>&1 </dev/null &
	pid_of[$name]=$!
	started+=($!)
}
declare -A pid_of=()

# wait_200 NAME URL: wait until a GET of URL is 200, while NAME runs.
wait_200() {
	local i
	for ((i = 0; i < 150; i++)); do
		kill -0 "${pid_of[$1]}" 2>/dev/null || die "$1 exited during start-up"
		[ "$(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "$2" || true)" = 200 ] && return 0
		sleep 0.1
	done
	die "$1 does not answer $2 with 200 after 15 s"
}

# tree PID: the pid and all its descendants.
tree() {
	echo "$1"
	local c
	for c in $(pgrep -P "$1" || true); do tree "$c"; done
}

cd "$root"
go build -o "$tmp/benchtool" ./bench/benchtool
bt=$tmp/benchtool
read -r -a ports <<<"$("$bt" freeports 5 | tr '\n' ' ')"
upport=${ports[0]}
declare -A port=([nginx]=${ports[1]} [gatehouse-std]=${ports[2]} [gatehouse-fast]=${ports[3]})
admin_port=${ports[4]}
fill() { sed -e "s|@TMP@|$tmp|g" -e "s|@PORT@|${3:-}|g" -e "s|@UPPORT@|$upport|g" "$1" >"$2"; }
go_env=(env -u GOGC -u GOMEMLIMIT -u GODEBUG GOMAXPROCS=1)

# The upstream: cmd/testupstream, as bench/run.sh's.
go build -o "$tmp/testupstream" ./cmd/testupstream
start upstream "${go_env[@]}" "$tmp/testupstream" -addr "127.0.0.1:$upport"
wait_200 upstream "http://127.0.0.1:$upport$path"

need_gatehouse=0
for p in "${proxies[@]}"; do case $p in gatehouse-*) need_gatehouse=1 ;; esac; done
if [ $need_gatehouse = 1 ]; then
	if [ -n "$gatehouse_bin" ]; then
		cp "$gatehouse_bin" "$tmp/gatehouse"
	else
		log "building gatehouse"
		go build -o "$tmp/gatehouse" ./cmd/gatehouse
	fi
	# One service and a catch-all route, served from a file.
	cat >"$tmp/gatehouse.yaml" <<EOF
format_version: "1"
services:
  - id: up
    name: up
    url: http://127.0.0.1:$upport
routes:
  - id: all
    name: all
    paths: ["/*"]
    service_id: up
EOF
fi

start_nginx() {
	mkdir -p "$tmp/nginx"
	fill "$here/conf/nginx.conf" "$tmp/nginx/nginx.conf" "${port[nginx]}"
	start nginx nginx -e stderr -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" -g 'daemon off;'
}
start_gatehouse() { # NAME ENGINE
	local unset=() v
	for v in $(compgen -e | grep -E '^(GATEHOUSE|OTEL)_' || true); do unset+=(-u "$v"); done
	# The engine by the environment: a gatehouse older than --engine
	# ignores it, and serves std.
	start "$1" "${go_env[@]}" "${unset[@]}" GATEHOUSE_ADMIN_TOKEN=bench-token-0123456789abcdef0123456 GATEHOUSE_ENGINE="$2" \
		"$tmp/gatehouse" serve --config "$tmp/gatehouse.yaml" --data-dir "$tmp/$1.data" \
		--admin-addr "127.0.0.1:$admin_port" --proxy-addr "127.0.0.1:${port[$1]}" \
		--log-level warn --shutdown-timeout 1s
}

printf '| proxy | requests | system calls | per request | most frequent (per request) |\n|---|---|---|---|---|\n' >"$tmp/table.md"
for p in "${proxies[@]}"; do
	case $p in
	nginx) start_nginx ;;
	gatehouse-std | gatehouse-fast)
		engine=${p#gatehouse-}
		if [ "$engine" = fast ] && ! "$tmp/gatehouse" serve --help 2>/dev/null | grep -q -- '--engine'; then
			log "SKIPPING $p: this gatehouse has no --engine flag"
			continue
		fi
		start_gatehouse "$p" "$engine"
		;;
	esac
	wait_200 "$p" "http://127.0.0.1:${port[$p]}$path"
	# Warm-up: upstream connections opened, buffers grown.
	"$bt" load -n $((conns * 50)) -c "$conns" -addr "127.0.0.1:${port[$p]}" -path "$path" >/dev/null
	strace_args=()
	for t in $(tree "${pid_of[$p]}"); do strace_args+=(-p "$t"); done
	strace -c -f -o "$tmp/$p.strace" "${strace_args[@]}" 2>"$tmp/$p.strace.log" &
	strace_pid=$!
	sleep 1 # strace attaches to every thread
	"$bt" load -n "$requests" -c "$conns" -addr "127.0.0.1:${port[$p]}" -path "$path" >&2
	kill -INT "$strace_pid"
	wait "$strace_pid" || true
	# strace -c's last line: "100.00 seconds usecs/call CALLS [ERRORS] total".
	total=$(awk '$NF == "total" { print $4 }' "$tmp/$p.strace")
	[[ $total =~ ^[0-9]+$ ]] || die "no total in strace's summary for $p: $(cat "$tmp/$p.strace" "$tmp/$p.strace.log")"
	top=$(awk -v n="$requests" '/^-/ { body = !body; next } body && $NF != "total" && $4 ~ /^[0-9]+$/ { printf "%s %.2f\n", $NF, $4 / n }' "$tmp/$p.strace" |
		sort -k2 -nr | head -n 5 | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
	awk -v p="$p" -v n="$requests" -v t="$total" -v top="$top" \
		'BEGIN { printf "| %s | %d | %d | %.1f | %s |\n", p, n, t, t / n, top }' >>"$tmp/table.md"
	log "$p: $total system calls for $requests requests"
	kill -TERM "${pid_of[$p]}"
	wait "${pid_of[$p]}" 2>/dev/null || true
done

echo "## System calls per request, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- command: \`bench/syscalls.sh --requests $requests --conns $conns --path $path --only \"${proxies[*]}\"\`"
echo "- nginx with one worker, gatehouse with GOMAXPROCS=1 (as in bench/run.sh), upstream cmd/testupstream;" \
	"\`strace -c -f\` on all the proxy's threads during exactly $requests GETs over $conns kept-alive connections (benchtool load)"
echo "- $(strace -V | head -n 1), $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(go version | awk '{print $3}')"
echo
cat "$tmp/table.md"
