#!/bin/sh
# Makes the certificates the TLS tests use, with the openssl command, in
# DIR (created): a CA (ca.pem), and signed by it server.pem/.key for
# localhost and 127.0.0.1, expired.pem/.key (valid for localhost, but
# expired), wrong.pem/.key (for another name), client.pem/.key (a client
# certificate); and self.pem/.key, a self-signed one for localhost.  EC
# P-256 keys: quick to make and to use.
# usage: tests/tls/mkcerts.sh DIR
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# sign NAME SUBJECT SAN DAYS: a certificate signed by the CA.
sign() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days "$4" -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
key ca.key
openssl req -x509 -new -key ca.key -subj "/CN=weft test CA" -days 30 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem 2>/dev/null
sign server "/CN=localhost/O=weft test" "DNS:localhost,IP:127.0.0.1" 30
sign wrong "/CN=other.example/O=weft test" "DNS:other.example" 30
sign client "/CN=weft client/O=weft test" "DNS:client.example" 30
# Negative days: valid from now, expired a day before.
sign expired "/CN=localhost/O=weft test" "DNS:localhost,IP:127.0.0.1" -1
key self.key
openssl req -x509 -new -key self.key -subj "/CN=localhost" -days 30 \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out self.pem 2>/dev/null
