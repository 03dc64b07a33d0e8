#!/bin/bash
# Instructions per HTTP/1.1 request in user space, repeatable (callgrind counts instructions).
# usage: benches/load/callgrind.sh target/release/harrier N   (run with N=20000 and 40000;
# the difference of the totals / 20000 is the cost of one request). Needs valgrind, h2load.
BIN=$1; N=${2:-20000}
SITE=$(mktemp -d); head -c 1024 /dev/urandom > "$SITE/1k.bin"; OUT=$(mktemp)
PORT=18191
VPID=
# However the script ends, the server is stopped and the temporary files go.
cleanup() {
  if [ -n "$VPID" ]; then kill "$VPID" 2>/dev/null; wait "$VPID" 2>/dev/null; fi
  rm -rf "$SITE" "$OUT"
}
trap cleanup EXIT
HARRIER__LOG__ACCESS_LOG=off HARRIER__SERVER__WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" "$SITE" -l http://127.0.0.1:$PORT >/dev/null 2>/dev/null &
VPID=$!
up=
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:$PORT/1k.bin && { up=1; break; }; sleep 0.2; done
[ -n "$up" ] || { echo "harrier did not answer on port $PORT" >&2; exit 1; }
h2load --h1 -n "$N" -c 10 http://127.0.0.1:$PORT/1k.bin | grep -E "requests:|status codes"
# SIGINT: a graceful stop, so that callgrind writes its totals.
kill -INT "$VPID"; wait "$VPID" 2>/dev/null; VPID=
callgrind_annotate "$OUT" 2>/dev/null | grep -m1 "PROGRAM TOTALS"
