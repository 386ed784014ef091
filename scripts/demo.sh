#!/usr/bin/env bash
# The demo: builds vox-caf, starts the Testbed conformance server (vox-testbed serve) and
# runs every client scenario against it over TCP on 127.0.0.1, as separate processes.
# Installs missing packages first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"
build="${VOX_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target vox-testbed vox-dump calculator
coproc SERVER { exec "$build/apps/vox-testbed" serve --port 0 --break-after-items 20; }
server=$SERVER_PID
exec 3<&"${SERVER[0]}"
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
# The server's first line is its address; wait for it at most 10 s.
read -t 10 -r line <&3 || { echo "server failed to start"; exit 1; }
addr="${line#LISTEN_ADDR=}"
echo "== server listening on $addr"
echo "== vox-testbed client --scenario all (the server cuts the link in the two retry scenarios; the session resumes):"
"$build/apps/vox-testbed" client --connect "$addr" --scenario all
echo "== one of the golden wire vectors, as vox-dump prints it:"
"$build/apps/vox-dump" "$root/../shared/vectors/wire/message_request_call.bin" 2>/dev/null || true
echo "== examples/calculator (a typed service declared, served and called in one program):"
"$build/examples/calculator"
