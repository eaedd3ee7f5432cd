#!/usr/bin/env bash
# Private registries for tests: Debian's docker-registry (distribution) on 127.0.0.1, three
# instances with storage of their own under DIR:
#   plain  plain HTTP
#   tls    HTTPS with a certificate from a CA made here with openssl (DIR/certs.d/HOST:PORT/ca.crt)
#   auth   HTTPS (same CA) with htpasswd basic auth (bcrypt), user "berth", password in DIR/env
#   mtls   HTTPS (same CA) that requires a client certificate signed by that CA
#          (http.tls.clientcas); one is made in DIR/tls/client.cert + client.key
#   token  plain HTTP with bearer-token auth: tokens (JWT, ES256, x5c) from a realm on
#          127.0.0.1:REG_TOKEN_REALM_PORT that the caller serves, signed with REG_TOKEN_KEY
#          (certificate REG_TOKEN_CERT), service "berth-test", issuer "berth-test-issuer"
# Ports are picked at random in 5100-5999 and checked free. The registries are stopped by PID.
#
#   hack/with-registry.sh start DIR     start them; DIR/env has REG_PLAIN, REG_TLS, REG_AUTH, REG_MTLS (host:port),
#                                       REG_TOKEN, REG_CERTS_D, REG_USER, REG_PASSWORD, REG_STORAGE_<NAME>,
#                                       REG_TOKEN_REALM_PORT, REG_TOKEN_KEY, REG_TOKEN_CERT,
#                                       REG_CLIENT_CERT, REG_CLIENT_KEY
#   hack/with-registry.sh stop DIR      stop them (by the PIDs in DIR/pids); DIR stays
#   hack/with-registry.sh DIR -- CMD... start, run CMD with DIR/env exported, stop
# Needs: docker-registry, openssl, apache2-utils (htpasswd).
set -euo pipefail

stop() {
  local dir=$1 pid
  [ -f "$dir/pids" ] || return 0
  while read -r pid; do
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
  done <"$dir/pids"
  while read -r pid; do
    [ -n "$pid" ] || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done <"$dir/pids"
  rm -f "$dir/pids"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
  local p
  for _ in $(seq 100); do
    p=$((5100 + RANDOM % 900))
    if port_free "$p" && ! grep -qx "$p" "$1/ports" 2>/dev/null; then
      echo "$p" >>"$1/ports"
      echo "$p"
      return 0
    fi
  done
  echo "with-registry.sh: no free port found" >&2
  return 1
}

make_ca() {
  local t=$1/tls
  mkdir -p "$t"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 \
    -keyout "$t/ca.key" -out "$t/ca.crt" -subj "/CN=berth test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$t/server.key" -out "$t/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$t/ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
    -days 3 -out "$t/server.crt" -extfile "$t/ext" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$t/client.key" -out "$t/client.csr" -subj "/CN=berth test client" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' >"$t/client-ext"
  openssl x509 -req -in "$t/client.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
    -days 3 -out "$t/client.cert" -extfile "$t/client-ext" 2>/dev/null
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 \
    -keyout "$t/token.key" -out "$t/token.crt" -subj "/CN=berth test token issuer" 2>/dev/null
}

# serve DIR NAME PORT TLS(0|1|2: with client certificates) AUTH(0|1|token:REALM_PORT)
serve() {
  local dir=$1 name=$2 port=$3 tls=$4 auth=$5 conf
  conf=$dir/$name.yml
  mkdir -p "$dir/storage-$name"
  {
    echo "version: 0.1"
    echo "log: {level: info, accesslog: {disabled: false}}"
    echo "storage: {filesystem: {rootdirectory: $dir/storage-$name}, delete: {enabled: true}}"
    echo "http:"
    echo "  addr: 127.0.0.1:$port"
    echo "  secret: berth-test-$name"
    if [ "$tls" = 1 ]; then
      echo "  tls: {certificate: $dir/tls/server.crt, key: $dir/tls/server.key}"
    elif [ "$tls" = 2 ]; then
      echo "  tls: {certificate: $dir/tls/server.crt, key: $dir/tls/server.key, clientcas: [$dir/tls/ca.crt]}"
    fi
    if [ "$auth" = 1 ]; then
      echo "auth: {htpasswd: {realm: berth-test, path: $dir/htpasswd}}"
    elif [ "${auth%%:*}" = token ]; then
      echo "auth: {token: {realm: \"http://127.0.0.1:${auth#token:}/token\", service: berth-test, issuer: berth-test-issuer, rootcertbundle: $dir/tls/token.crt}}"
    fi
  } >"$conf"
  OTEL_TRACES_EXPORTER=none docker-registry serve "$conf" >"$dir/$name.log" 2>&1 &
  echo $! >>"$dir/pids"
  for _ in $(seq 100); do
    if ! port_free "$port"; then return 0; fi
    kill -0 "$!" 2>/dev/null || break
    sleep 0.1
  done
  echo "with-registry.sh: registry $name on port $port did not start:" >&2
  cat "$dir/$name.log" >&2
  return 1
}

start() {
  local dir=$1 plain tls auth mtls token realm pass
  command -v docker-registry >/dev/null || { echo "with-registry.sh: docker-registry missing (apt-get install docker-registry)" >&2; exit 1; }
  mkdir -p "$dir"
  dir=$(realpath "$dir")
  stop "$dir"
  rm -f "$dir/ports"
  make_ca "$dir"
  pass=pw-$RANDOM$RANDOM
  htpasswd -Bbc "$dir/htpasswd" berth "$pass" 2>/dev/null
  realm=$(pick_port "$dir")
  # A port found free can be taken before the registry binds it: retry with another one.
  start_one() { # NAME TLS AUTH -> prints the port
    local p
    for _ in 1 2 3; do
      p=$(pick_port "$dir")
      if serve "$dir" "$1" "$p" "$2" "$3" >&2; then echo "$p"; return 0; fi
    done
    return 1
  }
  plain=$(start_one plain 0 0) || { stop "$dir"; exit 1; }
  tls=$(start_one tls 1 0) || { stop "$dir"; exit 1; }
  auth=$(start_one auth 1 1) || { stop "$dir"; exit 1; }
  token=$(start_one token 0 "token:$realm") || { stop "$dir"; exit 1; }
  mtls=$(start_one mtls 2 0) || { stop "$dir"; exit 1; }
  for p in "$tls" "$auth" "$mtls"; do
    mkdir -p "$dir/certs.d/127.0.0.1:$p"
    cp "$dir/tls/ca.crt" "$dir/certs.d/127.0.0.1:$p/ca.crt"
  done
  cat >"$dir/env" <<ENV
REG_PLAIN=127.0.0.1:$plain
REG_TLS=127.0.0.1:$tls
REG_AUTH=127.0.0.1:$auth
REG_MTLS=127.0.0.1:$mtls
REG_CLIENT_CERT=$dir/tls/client.cert
REG_CLIENT_KEY=$dir/tls/client.key
REG_STORAGE_MTLS=$dir/storage-mtls
REG_TOKEN=127.0.0.1:$token
REG_TOKEN_REALM_PORT=$realm
REG_TOKEN_KEY=$dir/tls/token.key
REG_TOKEN_CERT=$dir/tls/token.crt
REG_CERTS_D=$dir/certs.d
REG_USER=berth
REG_PASSWORD=$pass
REG_STORAGE_PLAIN=$dir/storage-plain
REG_STORAGE_TLS=$dir/storage-tls
REG_STORAGE_AUTH=$dir/storage-auth
REG_STORAGE_TOKEN=$dir/storage-token
ENV
}

case "${1:-}" in
  start) start "${2:?DIR}" ;;
  stop) stop "$(realpath -m "${2:?DIR}")" ;;
  *)
    dir=$(realpath -m "${1:?usage: $0 start|stop DIR, or $0 DIR -- CMD...}"); shift
    [ "${1:-}" = "--" ] && shift
    start "$dir"
    trap 'stop "$dir"' EXIT
    set -a; . "$dir/env"; set +a
    "$@"
    ;;
esac
