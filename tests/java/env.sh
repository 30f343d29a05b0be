# The interoperability tools' folders and steps, shared by stack/fetch, stack/install and
# tests/java/run. Sourced after stack/lib.sh, never run.
#   INTEROP_LIBS     runtime jars of tests/java/pom.xml (Kafka Connect's JsonConverter, Apache
#                    Avro), in the shared cache under a name that changes with the pom's content
#   INTEROP_CLASSES  the compiled tool, per checkout (gitignored)
#   CONNECT_WORKER_LIBS  runtime jars of tests/java/connect-worker/pom.xml (a Kafka Connect
#                    standalone worker with Debezium's JDBC sink and the MariaDB driver), likewise

INTEROP_DIR=$REPO_DIR/tests/java
INTEROP_LIBS=$CDC_STACK_CACHE/interop-tools-$(sha256sum "$INTEROP_DIR/pom.xml" | cut -c1-12)/libs
INTEROP_CLASSES=$INTEROP_DIR/target/classes
CONNECT_WORKER_POM=$INTEROP_DIR/connect-worker/pom.xml
CONNECT_WORKER_LIBS=$CDC_STACK_CACHE/connect-worker-$(sha256sum "$CONNECT_WORKER_POM" | cut -c1-12)/libs

interop_fetch() { # the pom's runtime jars into $INTEROP_LIBS, once
  [ -f "$INTEROP_LIBS/.complete" ] && return 0
  say "fetching the interoperability tools' jars (Kafka Connect JsonConverter, Apache Avro) into $INTEROP_LIBS"
  rm -rf "$INTEROP_LIBS"
  mvn -q -B -f "$INTEROP_DIR/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$INTEROP_LIBS" >&2 \
    || die "Maven could not fetch the jars of $INTEROP_DIR/pom.xml (is Maven Central reachable?)"
  touch "$INTEROP_LIBS/.complete"
}

connect_worker_fetch() { # the worker pom's runtime jars into $CONNECT_WORKER_LIBS, once
  [ -f "$CONNECT_WORKER_LIBS/.complete" ] && return 0
  say "fetching the Kafka Connect worker's jars (connect-runtime, Debezium JDBC sink, MariaDB driver) into $CONNECT_WORKER_LIBS"
  rm -rf "$CONNECT_WORKER_LIBS"
  mvn -q -B -f "$CONNECT_WORKER_POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$CONNECT_WORKER_LIBS" >&2 \
    || die "Maven could not fetch the jars of $CONNECT_WORKER_POM (is Maven Central reachable?)"
  touch "$CONNECT_WORKER_LIBS/.complete"
}

interop_stale() { # true when a source is newer than the last build
  [ -f "$INTEROP_CLASSES/.built" ] || return 0
  [ -n "$(find "$INTEROP_DIR/src" -name '*.java' -newer "$INTEROP_CLASSES/.built" | head -n 1)" ]
}

interop_build() { # compiles the tool when its sources changed; one build at a time
  [ -f "$INTEROP_LIBS/.complete" ] || die "the interoperability tools' jars are missing ($INTEROP_LIBS): run stack/install"
  interop_stale || return 0
  mkdir -p "$INTEROP_DIR/target"
  (
    flock 9
    if interop_stale; then
      rm -rf "$INTEROP_CLASSES"
      mkdir -p "$INTEROP_CLASSES"
      javac -nowarn -encoding UTF-8 --release 17 -d "$INTEROP_CLASSES" -cp "$INTEROP_LIBS/*" \
        $(find "$INTEROP_DIR/src" -name '*.java') >&2 || die "javac could not compile $INTEROP_DIR/src"
      touch "$INTEROP_CLASSES/.built"
    fi
  ) 9>"$INTEROP_DIR/target/.lock"
}
