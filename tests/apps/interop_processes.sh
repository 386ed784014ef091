#!/usr/bin/env bash
# CTest: vox-testbed against the reference TypeScript runtime (../shared/interop), over TCP
# on 127.0.0.1, in both directions. Skips (exit 77) when node or the bundle is missing.
#   interop_processes.sh BIN INTEROP_DIR ts-client   the reference client scenarios against vox-testbed serve
#   interop_processes.sh BIN INTEROP_DIR ts-server   vox-testbed client against the reference server
#   interop_processes.sh BIN INTEROP_DIR ts-resume-client   the reference resumable client cuts its link
#                                                    and resumes with vox-testbed serve
#   interop_processes.sh BIN INTEROP_DIR ts-resume-server   vox-testbed client cuts its link and resumes
#                                                    with the reference server
#   interop_processes.sh BIN INTEROP_DIR ts-stable-client|ts-stable-server   ts-client, ts-server over
#                                                    the stable conduit (no link cut: the TS stable
#                                                    conduit cannot reconnect); vox-testbed sends an
#                                                    ack-only frame after every frame it receives
#                                                    without answering, so the TS peer must take those
#   interop_processes.sh BIN INTEROP_DIR ts-zstd-client   the reference client against vox-testbed serve
#                                                    --compress prefer: it never offers, so it gets a
#                                                    plain session and passes
#   interop_processes.sh BIN INTEROP_DIR ts-zstd-server   vox-testbed client --compress prefer passes
#                                                    against the reference server (no compression);
#                                                    --compress require fails with an error naming it
set -euo pipefail
testbed="$1"
interop="$2"
if ! command -v node >/dev/null || [[ ! -f "$interop/peer.mjs" ]]; then
  echo "SKIP: needs node and $interop/peer.mjs (the reference TypeScript runtime)"
  exit 77
fi
server_log=$(mktemp)
case "$3" in
  ts-client|ts-resume-client) coproc LISTENER { exec "$testbed" serve --port 0 2>"$server_log"; } ;;
  ts-zstd-client) coproc LISTENER { exec "$testbed" serve --port 0 --compress prefer 2>"$server_log"; } ;;
  ts-stable-client) coproc LISTENER { exec "$testbed" serve --port 0 --stable-ack-after 1 2>"$server_log"; } ;;
  ts-server|ts-resume-server|ts-stable-server|ts-zstd-server) coproc LISTENER { exec node "$interop/peer.mjs" server --host 127.0.0.1 --port 0; } ;;
  *) echo "unknown case $3" >&2; exit 2 ;;
esac
listener=$LISTENER_PID
exec 3<&"${LISTENER[0]}"
trap 'kill $listener 2>/dev/null || true; rm -f "$server_log"' EXIT
# The listener names its address on a line of its own; wait for it at most 20 s.
addr=""
while read -t 20 -r line <&3; do
  if [[ "$line" == LISTEN_ADDR=* ]]; then addr="${line#LISTEN_ADDR=}"; break; fi
done
[[ -n "$addr" ]] || { echo "the listener printed no LISTEN_ADDR" >&2; exit 1; }
case "$3" in
  ts-client|ts-zstd-client) timeout 150 node "$interop/peer.mjs" client --addr "$addr" --scenarios all --jobs 2 ;;
  ts-zstd-server)
    timeout 150 "$testbed" client --connect "$addr" --scenario common --compress prefer
    if err=$(timeout 30 "$testbed" client --connect "$addr" --scenario echo --compress require 2>&1); then
      echo "--compress require succeeded against a server without compression: $err" >&2; exit 1
    fi
    echo "$err"
    grep -q "zstd compression is required" <<<"$err" || { echo "the error does not name compression" >&2; exit 1; }
    ;;
  ts-server) timeout 150 "$testbed" client --connect "$addr" --scenario common ;;
  ts-stable-client) timeout 150 node "$interop/peer.mjs" client --addr "$addr" --scenarios all --jobs 2 --conduit stable ;;
  ts-stable-server) timeout 150 "$testbed" client --connect "$addr" --scenario common --conduit stable --stable-ack-after 1 ;;
  ts-resume-client)
    out=$(PEER_ADDR="$addr" timeout 60 node "$interop/vconn_resume.mjs") || { echo "$out"; exit 1; }
    echo "$out"
    grep -q "OK resumed on new TCP link" <<<"$out"
    # The client cannot tell a resumed session from a fresh one; the server can.
    grep -q "resumed on tcp" "$server_log" || { echo "vox-testbed serve did not resume the session:" >&2; cat "$server_log" >&2; exit 1; }
    ;;
  ts-resume-server)
    out=$(timeout 60 "$testbed" client --connect "$addr" --scenario common --break-and-resume) || { echo "$out"; exit 1; }
    echo "$out"
    grep -q "^RESUMED$" <<<"$out"
    ;;
esac
