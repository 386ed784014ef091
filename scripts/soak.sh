#!/usr/bin/env bash
# Soak: starts `vox-testbed serve` and runs `vox-soak` against it (rounds of concurrent
# sessions; the server's RSS, threads and descriptors after every round). Not part of CI.
#   scripts/soak.sh [ROUNDS] [SESSIONS] [extra vox-soak options…]
# Builds into build/ (VOX_BUILD_DIR) if needed. Exit 0 only if every round passed, nothing
# grew more than 10 % over round 1, and the server then stopped cleanly on SIGTERM (with
# VOX_BUILD_DIR pointing at a -DVOX_SANITIZE=ON build, that includes LeakSanitizer's
# check at exit: it exits 23 when something leaked).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${VOX_BUILD_DIR:-$root/build}"
rounds="${1:-10}"
sessions="${2:-500}"
shift $(( $# > 2 ? 2 : $# ))
if [[ ! -x "$build/apps/vox-soak" || ! -x "$build/apps/vox-testbed" ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --target vox-soak vox-testbed -j "$(nproc)"
fi
# A dropped session waits out the resume grace on the server: keep it short so that a
# round can settle.
log=$(mktemp /tmp/vox-soak-server.XXXXXX)
echo "server log: $log"
coproc SERVER { exec "$build/apps/vox-testbed" serve --port 0 --resume-grace 1000 2>"$log"; }
server=$SERVER_PID
exec 3<&"${SERVER[0]}"
trap 'kill $server 2>/dev/null || true' EXIT
read -t 10 -r line <&3
[[ "$line" == LISTEN_ADDR=* ]] || { echo "server said: $line" >&2; exit 1; }
status=0
"$build/apps/vox-soak" --connect "${line#LISTEN_ADDR=}" --pid "$server" --rounds "$rounds" --sessions "$sessions" \
  --grace-ms 11000 "$@" || status=$?
kill -TERM "$server"
server_status=0
wait "$server" || server_status=$?
trap - EXIT
echo "server stopped with exit status $server_status (log: $log)"
[[ $server_status -eq 0 ]] || status=1
exit $status
