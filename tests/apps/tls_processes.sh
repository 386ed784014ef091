#!/usr/bin/env bash
# CTest: vox-testbed over TLS as separate processes on 127.0.0.1, with throwaway
# certificates from scripts/make_certs.sh.
#   tls_processes.sh BIN CERTS_SCRIPT serve      client --tls-ca/--tls-cert against serve with mutual TLS
#                                                and --break-after-items 20: all 34 scenarios
#   tls_processes.sh BIN CERTS_SCRIPT s_client   openssl s_client negotiates TLS 1.3 with ALPN "vox"
#                                                and a verified chain
#   tls_processes.sh BIN CERTS_SCRIPT refusals   a plain client and a client without a client
#                                                certificate fail, naming why
set -euo pipefail
testbed="$1"
make_certs="$2"
what="$3"
certs=$(mktemp -d)
"$make_certs" "$certs" >/dev/null
server_log="$certs/server.log"
coproc LISTENER { exec "$testbed" serve --port 0 --break-after-items 20 --tls-cert "$certs/server.pem" \
  --tls-key "$certs/server.key" --tls-ca "$certs/ca.pem" --tls-require-client-cert 2>"$server_log"; }
listener=$LISTENER_PID
exec 3<&"${LISTENER[0]}"
trap 'kill $listener 2>/dev/null || true; rm -rf "$certs"' EXIT
read -t 10 -r line <&3
addr="${line#LISTEN_ADDR=}"
[[ "$line" == LISTEN_ADDR=* ]] || { echo "listener said: $line" >&2; cat "$server_log" >&2; exit 1; }
client_tls=(--tls-ca "$certs/ca.pem" --tls-cert "$certs/client.pem" --tls-key "$certs/client.key")
case "$what" in
  serve)
    out=$(timeout 120 "$testbed" client --connect "$addr" --scenario all "${client_tls[@]}") || { echo "$out"; exit 1; }
    echo "$out"
    [[ $(grep -c "^OK " <<<"$out") == 34 ]] || { echo "expected 34 OK" >&2; exit 1; } ;;
  s_client)
    out=$(timeout 20 openssl s_client -connect "$addr" -CAfile "$certs/ca.pem" -verify_return_error \
          -cert "$certs/client.pem" -key "$certs/client.key" -alpn vox </dev/null 2>&1) || true
    echo "$out"
    grep -q "New, TLSv1.3, Cipher is" <<<"$out" || { echo "no TLS 1.3" >&2; exit 1; }
    grep -q "Verify return code: 0 (ok)" <<<"$out" || { echo "the chain did not verify" >&2; exit 1; }
    grep -q "ALPN protocol: vox" <<<"$out" || { echo "ALPN vox not selected" >&2; exit 1; } ;;
  refusals)
    if out=$(timeout 20 "$testbed" client --connect "$addr" --scenario echo 2>&1); then
      echo "a plain client passed: $out" >&2; exit 1
    fi
    echo "$out"
    grep -q "the peer speaks TLS" <<<"$out" || { echo "the plain client's error does not say TLS" >&2; exit 1; }
    if out=$(timeout 20 "$testbed" client --connect "$addr" --scenario echo --tls-ca "$certs/ca.pem" 2>&1); then
      echo "a client without a certificate passed: $out" >&2; exit 1
    fi
    echo "$out"
    grep -q "certificate required" <<<"$out" || { echo "the error does not name the missing certificate" >&2; exit 1; }
    # The server still serves a good client afterwards.
    timeout 20 "$testbed" client --connect "$addr" --scenario echo "${client_tls[@]}" ;;
  *) echo "unknown case $what" >&2; exit 2 ;;
esac
