#!/usr/bin/env bash
# CTest: vox-testbed over TLS as separate processes on 127.0.0.1, with throwaway
# certificates from scripts/make_certs.sh.
#   tls_processes.sh BIN CERTS_SCRIPT serve      client --tls-ca/--tls-cert against serve with mutual TLS
#                                                and --break-after-items 20: all 34 scenarios
#   tls_processes.sh BIN CERTS_SCRIPT s_client   openssl s_client negotiates TLS 1.3 with ALPN "vox"
#                                                and a verified chain
#   tls_processes.sh BIN CERTS_SCRIPT refusals   a plain client, a client without a client
#                                                certificate and one with a wrong --auth-token
#                                                fail, naming why; no token in any output
#   tls_processes.sh ECHO CERTS_SCRIPT echo      vox-echo call against vox-echo serve over mutual
#                                                TLS with a token, then with a wrong one
# The server requires client certificates and the bearer token below.
set -euo pipefail
testbed="$1"
make_certs="$2"
what="$3"
certs=$(mktemp -d)
"$make_certs" "$certs" >/dev/null
server_log="$certs/server.log"
token="tok-$RANDOM-$RANDOM-secret"
server_tls=(--tls-cert "$certs/server.pem" --tls-key "$certs/server.key" --tls-ca "$certs/ca.pem"
            --tls-require-client-cert --auth-token "$token")
if [[ "$what" == echo ]]; then
  coproc LISTENER { exec "$testbed" serve --port 0 "${server_tls[@]}" 2>"$server_log"; }
else
  coproc LISTENER { exec "$testbed" serve --port 0 --break-after-items 20 "${server_tls[@]}" 2>"$server_log"; }
fi
listener=$LISTENER_PID
exec 3<&"${LISTENER[0]}"
trap 'kill $listener 2>/dev/null || true; rm -rf "$certs"' EXIT
read -t 10 -r line <&3
addr="${line#LISTEN_ADDR=}"
[[ "$line" == LISTEN_ADDR=* ]] || { echo "listener said: $line" >&2; cat "$server_log" >&2; exit 1; }
client_tls=(--tls-ca "$certs/ca.pem" --tls-cert "$certs/client.pem" --tls-key "$certs/client.key")
no_token_shown() { # every line a process printed, and the server's log
  if grep -q "$token" <<<"$1" || grep -q "$token" "$server_log"; then
    echo "the token appears in the output or the server's log" >&2; exit 1
  fi
}
case "$what" in
  serve)
    out=$(timeout 120 "$testbed" client --connect "$addr" --scenario all "${client_tls[@]}" --auth-token "$token") \
      || { echo "$out"; exit 1; }
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
    if out=$(timeout 20 "$testbed" client --connect "$addr" --scenario echo "${client_tls[@]}" \
               --auth-token "not-$token" 2>&1); then
      echo "a client with a wrong token passed: $out" >&2; exit 1
    fi
    echo "$out"
    grep -q "unauthorized: wrong bearer token" <<<"$out" || { echo "the refusal does not say why" >&2; exit 1; }
    no_token_shown "$out"
    # The server still serves a good client afterwards.
    out=$(timeout 20 "$testbed" client --connect "$addr" --scenario echo "${client_tls[@]}" --auth-token "$token")
    echo "$out"
    no_token_shown "$out" ;;
  echo)
    out=$(timeout 20 "$testbed" call --connect "$addr" "${client_tls[@]}" --auth-token "$token" 2>&1) \
      || { echo "$out"; exit 1; }
    echo "$out"
    grep -q "TLS" <<<"$out" && grep -q "^done" <<<"$out" || { echo "no TLS, or not done" >&2; exit 1; }
    if out=$(timeout 20 "$testbed" call --connect "$addr" "${client_tls[@]}" --auth-token wrong 2>&1); then
      echo "a wrong token passed: $out" >&2; exit 1
    fi
    echo "$out"
    grep -q "refused: unauthorized: wrong bearer token" <<<"$out" || { echo "the refusal does not say why" >&2; exit 1; }
    no_token_shown "$out" ;;
  *) echo "unknown case $what" >&2; exit 2 ;;
esac
