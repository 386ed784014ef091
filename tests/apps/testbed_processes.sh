#!/usr/bin/env bash
# CTest: `vox-testbed client --scenario all` against `vox-testbed serve`, two processes, TCP.
set -euo pipefail
testbed="$1"
out="$(mktemp)"
"$testbed" serve --port 0 >"$out" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 200); do
  grep -q '^LISTEN_ADDR=' "$out" && break
  kill -0 $server
  sleep 0.05 # polling the server's first output line, bounded to 10 s
done
addr="$(grep -m1 '^LISTEN_ADDR=' "$out" | cut -d= -f2)"
timeout 120 "$testbed" client --connect "$addr" --scenario all
