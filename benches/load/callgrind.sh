#!/bin/bash
# Instructions per HTTP/1.1 request in user space, repeatable (callgrind counts instructions).
# usage: benches/load/callgrind.sh target/release/harrier N [URL_PATH] [SETTINGS_FILE]
#   Run with N=20000 and 40000; the difference of the totals / 20000 is the cost of one
#   request. URL_PATH defaults to /1k.bin (a 1 KiB file in a fresh site directory); a
#   SETTINGS_FILE may add sites and routes (its endpoints are replaced by one on port 18191,
#   and its [static] root by the site directory, through HARRIER__ variables).
#   Needs valgrind, h2load, curl. Set CALLGRIND_OUT=FILE to keep the profile.
BIN=$1; N=${2:-20000}; URL_PATH=${3:-/1k.bin}; SETTINGS=$4
SITE=$(mktemp -d); head -c 1024 /dev/urandom > "$SITE/1k.bin"; OUT=${CALLGRIND_OUT:-$(mktemp)}
PORT=18191
VPID=
# However the script ends, the server is stopped and the temporary files go.
cleanup() {
  if [ -n "$VPID" ]; then kill "$VPID" 2>/dev/null; wait "$VPID" 2>/dev/null; fi
  rm -rf "$SITE"
  [ -n "$CALLGRIND_OUT" ] || rm -f "$OUT"
}
trap cleanup EXIT
ARGS=("$SITE" -l "http://127.0.0.1:$PORT")
if [ -n "$SETTINGS" ]; then ARGS+=(-c "$SETTINGS"); export HARRIER__STATIC__ROOT="$SITE"; fi
HARRIER__LOG__ACCESS_LOG=off HARRIER__SERVER__WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" "${ARGS[@]}" >/dev/null 2>/dev/null &
VPID=$!
up=
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT$URL_PATH" && { up=1; break; }; sleep 0.2; done
[ -n "$up" ] || { echo "harrier did not answer 2xx for $URL_PATH on port $PORT" >&2; exit 1; }
h2load --h1 -n "$N" -c 10 "http://127.0.0.1:$PORT$URL_PATH" | grep -E "requests:|status codes"
# SIGINT: a graceful stop, so that callgrind writes its totals.
kill -INT "$VPID"; wait "$VPID" 2>/dev/null; VPID=
callgrind_annotate "$OUT" 2>/dev/null | grep -m1 "PROGRAM TOTALS"
