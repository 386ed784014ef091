#!/usr/bin/env bash
# CTest: vox-gateway between a client and vox-testbed serve, as separate processes over
# TCP on 127.0.0.1.
#   gateway_processes.sh TESTBED GATEWAY INTEROP_DIR testbed  vox-testbed client → vox-gateway → vox-testbed serve
#   gateway_processes.sh TESTBED GATEWAY INTEROP_DIR chain    the same through two gateways in a row
#   gateway_processes.sh TESTBED GATEWAY INTEROP_DIR per-session  testbed, the gateway with --upstream-per-session
#   gateway_processes.sh TESTBED GATEWAY INTEROP_DIR ts       the reference TypeScript client → vox-gateway →
#                                                             vox-testbed serve (skips, exit 77, without node)
#   gateway_processes.sh TESTBED GATEWAY INTEROP_DIR ts-resume  the reference resumable TS client cuts its own
#                                                             link; the break must reach vox-testbed serve
#                                                             through the gateway (skips without node)
# The server cuts its link (to the gateway) after the 20th item of each generate_retry_*
# call; the client runs --scenario all, whose two channel_retry_* scenarios pass only if
# that break reaches the client through every gateway and the retry comes back through
# them (README "Gateways and splices").
set -euo pipefail
testbed="$1"
gateway="$2"
interop="$3"
what="$4"
if [[ "$what" == ts* ]] && { ! command -v node >/dev/null || [[ ! -f "$interop/peer.mjs" ]]; }; then
  echo "SKIP: needs node and $interop/peer.mjs and vconn_resume.mjs (the reference TypeScript runtime)"
  exit 77
fi
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

# Starts "$@" in the background, its stdout read here through a FIFO (stderr to a file),
# and sets `addr` from its LISTEN_ADDR= line, waiting at most 10 s for each line, and
# `log` to its stderr file.
start() {
  local dir line fd
  dir=$(mktemp -d)
  log="$dir/stderr"
  mkfifo "$dir/stdout"
  "$@" >"$dir/stdout" 2>"$log" &
  pids+=($!)
  exec {fd}<"$dir/stdout"
  while read -r -t 10 line <&"$fd"; do
    if [[ "$line" == LISTEN_ADDR=* ]]; then
      addr="${line#LISTEN_ADDR=}"
      cat <&"$fd" >/dev/null & # what it prints later must not fill the pipe
      return 0
    fi
  done
  echo "no LISTEN_ADDR from $*:" >&2
  cat "$log" >&2
  exit 1
}

start "$testbed" serve --port 0 --break-after-items 20
server_log="$log"
gateway_args=()
if [[ "$what" == per-session ]]; then gateway_args=(--upstream-per-session); what=testbed; fi
start "$gateway" --upstream "$addr" "${gateway_args[@]}"
gateway_pid=${pids[-1]}
gateway_log="$log"
if [[ "$what" == chain ]]; then start "$gateway" --upstream "$addr"; fi
case "$what" in
  testbed|chain)
    out=$(timeout 120 "$testbed" client --connect "$addr" --scenario all) || { echo "$out"; exit 1; }
    echo "$out"
    [[ $(grep -c "^OK " <<<"$out") == 34 ]] || { echo "expected 34 OK" >&2; exit 1; }
    ! grep -q "^FAIL" <<<"$out" || { echo "a scenario failed" >&2; exit 1; }
    # SIGTERM ends the gateway cleanly (exit status 0) within the timeout.
    kill -TERM "$gateway_pid"
    status=0
    timeout 20 tail --pid="$gateway_pid" -f /dev/null || { echo "vox-gateway did not exit on SIGTERM" >&2; exit 1; }
    wait "$gateway_pid" || status=$?
    [[ $status == 0 ]] || { echo "vox-gateway exited with $status on SIGTERM" >&2; exit 1; } ;;
  ts)
    out=$(timeout 150 node "$interop/peer.mjs" client --addr "$addr" --scenarios all --jobs 2) || { echo "$out"; exit 1; }
    echo "$out"
    grep -q "^SUMMARY 32/32 passed" <<<"$out" || { echo "expected 32/32" >&2; exit 1; } ;;
  ts-resume)
    out=$(PEER_ADDR="$addr" timeout 60 node "$interop/vconn_resume.mjs") || { echo "$out"; exit 1; }
    echo "$out"
    grep -q "OK resumed on new TCP link" <<<"$out" || { echo "the client did not resume" >&2; exit 1; }
    # The client's break resumed its gateway session, and its splice passed the break
    # on: the gateway's upstream session resumed with the server too.
    grep -q "resumed on tcp" "$server_log" || { echo "the break did not reach vox-testbed serve:" >&2; cat "$gateway_log" "$server_log" >&2; exit 1; } ;;
  *) echo "unknown case $what" >&2; exit 2 ;;
esac
