#!/usr/bin/env bash
# CTest: vox-testbed as separate processes over TCP on 127.0.0.1.
#   testbed_processes.sh BIN serve          client --connect  against  serve --break-after-items 20 (all 34)
#   testbed_processes.sh BIN subject-listen SUBJECT_MODE=client against SUBJECT_MODE=server-listen
#   testbed_processes.sh BIN subject-server client --listen   against  SUBJECT_MODE=server
#   stable-serve, stable-subject-listen, stable-subject-server: the same over the stable
#   conduit (the initiator asks for it; serve skips the two scenarios that cut the link)
#   zstd-serve, stable-zstd-serve: serve --compress prefer, client --compress require (so
#   every scenario runs over a compressed link, or the client fails)
set -euo pipefail
testbed="$1"
conduit=bare
what="$2"
if [[ "$what" == stable-* ]]; then conduit=stable; what="${what#stable-}"; fi
serve_compress=(); client_compress=()
if [[ "$what" == zstd-* ]]; then
  serve_compress=(--compress prefer); client_compress=(--compress require); what="${what#zstd-}"
fi
export SPEC_CONDUIT=$conduit
case "$what" in
  serve)          coproc LISTENER { exec "$testbed" serve --port 0 --break-after-items 20 "${serve_compress[@]}"; } ;;
  subject-listen) coproc LISTENER { SUBJECT_MODE=server-listen exec "$testbed"; } ;;
  subject-server) coproc LISTENER { exec timeout 120 "$testbed" client --listen 127.0.0.1:0 --scenario common; } ;;
  *) echo "unknown case $2" >&2; exit 2 ;;
esac
listener=$LISTENER_PID
exec 3<&"${LISTENER[0]}" # bash closes the coproc's own descriptors once it exits
trap 'kill $listener 2>/dev/null || true' EXIT
# The listener's first line names its address; wait for it at most 10 s.
read -t 10 -r line <&3
addr="${line#LISTEN_ADDR=}"
[[ "$line" == LISTEN_ADDR=* ]] || { echo "listener said: $line" >&2; exit 1; }
case "$what" in
  serve)
    if [[ $conduit == stable ]]; then
      timeout 120 "$testbed" client --connect "$addr" --scenario common --conduit stable "${client_compress[@]}"
      exit
    fi
    # Every scenario, the two that need the server to cut the link included: 34 OK.
    out=$(timeout 120 "$testbed" client --connect "$addr" --scenario all "${client_compress[@]}") || { echo "$out"; exit 1; }
    echo "$out"
    [[ $(grep -c "^OK " <<<"$out") == 34 ]] || { echo "expected 34 OK" >&2; exit 1; } ;;
  subject-listen) SUBJECT_MODE=client PEER_ADDR="$addr" CLIENT_SCENARIO=common timeout 120 "$testbed" ;;
  subject-server)
    # The subject serves until the harness (our client) ends the session, then exits 0;
    # the client's report is the listener's remaining output.
    SUBJECT_MODE=server PEER_ADDR="$addr" timeout 120 "$testbed"
    cat <&3
    wait $listener ;;
esac
