#!/usr/bin/env bash
# Makes throwaway TLS certificates for tests and the demo (README "Deployment and
# security"): never use them for anything real, their keys are unencrypted files.
#   make_certs.sh DIR
# DIR gets, as PEM (each *.pem with its *.key):
#   ca               the trusted test CA
#   server           signed by ca, for localhost and 127.0.0.1 (and ::1)
#   client           signed by ca, CN=vox-client, for mutual TLS
#   selfsigned       a server certificate that signs itself
#   expired          signed by ca, expired yesterday
#   wronghost        signed by ca, for other.example and 10.9.9.9 only
#   other-ca         another CA, which nobody trusts
#   other-server     signed by other-ca, for localhost and 127.0.0.1
#   other-client     signed by other-ca, CN=vox-other-client
set -euo pipefail
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
export OPENSSL_CONF=/dev/null # the machine's openssl.cnf must not change what we make

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

ca() { # name subject
  key "$1"
  printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n' > "$1.ext"
  openssl req -new -x509 -key "$1.key" -out "$1.pem" -days 30 -subj "$2" -extensions v3 \
    -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3]\n'; cat "$1.ext") 2>/dev/null
  rm -f "$1.ext"
}

leaf() { # name subject signer days san usage
  key "$1"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "$2" -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n') 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' "$6" "$5" > "$1.ext"
  if [[ "$3" == self ]]; then
    openssl x509 -req -in "$1.csr" -key "$1.key" -out "$1.pem" -days "$4" -extfile "$1.ext" 2>/dev/null
  else
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -set_serial "0x$(openssl rand -hex 8)" \
      -out "$1.pem" -days "$4" -extfile "$1.ext" 2>/dev/null
  fi
  rm -f "$1.csr" "$1.ext"
}

local_names="DNS:localhost,IP:127.0.0.1,IP:::1"
ca ca "/O=vox-caf tests/CN=vox test CA"
ca other-ca "/O=somebody else/CN=other CA"
leaf server "/O=vox-caf tests/CN=vox-server" ca 30 "$local_names" serverAuth
leaf client "/O=vox-caf tests/CN=vox-client" ca 30 "DNS:client.vox.test" clientAuth
leaf selfsigned "/CN=vox-selfsigned" self 30 "$local_names" serverAuth
leaf expired "/CN=vox-expired" ca -1 "$local_names" serverAuth
leaf wronghost "/CN=other.example" ca 30 "DNS:other.example,IP:10.9.9.9" serverAuth
leaf other-server "/CN=vox-other-server" other-ca 30 "$local_names" serverAuth
leaf other-client "/CN=vox-other-client" other-ca 30 "DNS:other-client.vox.test" clientAuth
chmod 600 ./*.key
echo "certificates in $(pwd)"
