#!/usr/bin/env bash
# The lab's secrets: a CA of its own, the control plane's server certificate, one random password per
# account. Idempotent: what exists is kept (so a re-run never invalidates a running lab's credentials);
# delete a file under state/ to have it made again.
#
#   deploy/lab/secrets.sh            # into deploy/lab/state (or $MEAO_LAB_STATE)
#
# Layout (directories 0700, files 0600, owned by root; services.sh copies what a service must read):
#   state/tls/ca.crt ca.key          the lab CA (what MEAO_BROKER_CA_FILE and sslrootcert point at)
#   state/tls/server.crt server.key  ctl's PostgreSQL and Redis: SAN ctl.mlab, 10.213.0.10, 127.0.0.1
#   state/secrets/<account>.pw       pg-owner, pg-pop1.., redis-ctl, redis-pop1.., oauth-pop1.. (made later)
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${MEAO_LAB_STATE:-$LAB_DIR/state}"
POPS="${MEAO_LAB_POPS:-pop1 pop2}"
# the names the server certificate holds: how PoPs (ctl.mlab), ctl itself and the root-ns tests reach it
SERVER_SAN="${MEAO_LAB_SERVER_SAN:-DNS:ctl.mlab,IP:10.213.0.10,IP:127.0.0.1}"

umask 077  # the secrets; the state directory itself is 0711 (see below)
mkdir -p "$STATE/tls" "$STATE/secrets"
chmod 0700 "$STATE/tls" "$STATE/secrets"
chmod 0711 "$STATE"  # postgres and redis must reach their own directories below it

say() { echo "lab secrets: $*" >&2; }

password() {  # password NAME: state/secrets/NAME.pw, 32 random bytes in URL-safe base64 (no quoting needed)
    local file="$STATE/secrets/$1.pw"
    if [ ! -s "$file" ]; then
        openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n' >"$file"
        say "made password $1"
    fi
    chmod 0600 "$file"
}

ca() {
    [ -s "$STATE/tls/ca.crt" ] && [ -s "$STATE/tls/ca.key" ] && return
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=meao lab CA" -keyout "$STATE/tls/ca.key" -out "$STATE/tls/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    rm -f "$STATE/tls/server.crt"  # a new CA: the old server certificate no longer chains to it
    say "made the lab CA $STATE/tls/ca.crt"
}

server_cert() {
    local crt="$STATE/tls/server.crt" key="$STATE/tls/server.key"
    if [ -s "$crt" ] && [ -s "$key" ] && openssl verify -CAfile "$STATE/tls/ca.crt" "$crt" >/dev/null 2>&1 \
        && [ "$(cat "$STATE/tls/server.san" 2>/dev/null)" = "$SERVER_SAN" ]; then
        return
    fi
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=ctl.mlab" \
        -keyout "$key" -out "$STATE/tls/server.csr" 2>/dev/null
    local ext="$STATE/tls/server.ext"
    printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n'\
'extendedKeyUsage=serverAuth\n' "$SERVER_SAN" >"$ext"
    openssl x509 -req -in "$STATE/tls/server.csr" -CA "$STATE/tls/ca.crt" -CAkey "$STATE/tls/ca.key" \
        -CAcreateserial -days 825 -extfile "$ext" -out "$crt" 2>/dev/null
    rm -f "$STATE/tls/server.csr" "$ext"
    echo "$SERVER_SAN" >"$STATE/tls/server.san"
    say "made the server certificate $crt ($SERVER_SAN)"
}

ca
server_cert
chmod 0600 "$STATE"/tls/*
password pg-owner
password redis-ctl
password redis-admin
for pop in $POPS; do
    password "pg-$pop"
    password "redis-$pop"
done
