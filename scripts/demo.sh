#!/usr/bin/env bash
# The demo: builds vox-caf, starts the Testbed conformance server (vox-testbed serve) and
# runs every client scenario against it over TCP on 127.0.0.1, as separate processes.
# Installs missing packages first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"
build="${VOX_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target vox-testbed vox-dump
out="$(mktemp)"
"$build/apps/vox-testbed" serve --port 0 >"$out" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do
  grep -q '^LISTEN_ADDR=' "$out" && break
  kill -0 $server || { echo "server failed to start"; cat "$out"; exit 1; }
  sleep 0.1
done
addr="$(grep -m1 '^LISTEN_ADDR=' "$out" | cut -d= -f2)"
echo "== server listening on $addr"
echo "== vox-testbed client --scenario all:"
"$build/apps/vox-testbed" client --connect "$addr" --scenario all
echo "== one of the golden wire vectors, as vox-dump prints it:"
"$build/apps/vox-dump" "$root/../shared/vectors/wire/message_request_call.bin" 2>/dev/null || true
