# syntax=docker/dockerfile:1
# Image with both services, cdc-source and jdbc-sink. docker-compose.yml builds it once and runs
# each service from it with its own command and config (deploy/config/).
#
#   docker build -t cdc-pipeline .
#   docker run --rm cdc-pipeline cdc-source --help

# --- build stage: the release build of docs/operations.md, with librdkafka built from source ---
FROM rust:1.95.0-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake build-essential pkg-config \
      libcurl4-openssl-dev zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cache mounts keep the crate downloads and the target folder between builds; the binaries
# are copied out of the cached target folder in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cdc-source -p jdbc-sink \
 && install -m 0755 target/release/cdc-source target/release/jdbc-sink /usr/local/bin/

# --- runtime stage: the two binaries and the shared libraries they link ---
FROM debian:12.11-slim
# libssl3 for the registry client's TLS, zlib for compressed Kafka batches, curl for healthchecks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 cdc \
 && useradd --system --uid 10001 --gid cdc --no-create-home --shell /usr/sbin/nologin cdc
COPY --from=build /usr/local/bin/cdc-source /usr/local/bin/jdbc-sink /usr/local/bin/
USER 10001:10001
# JSON logs for container log collectors; RUST_LOG sets the level.
ENV LOG_FORMAT=json RUST_LOG=info
# cdc-source serves HTTP on 18083, jdbc-sink on 18084 (http.listen in deploy/config).
EXPOSE 18083 18084
CMD ["cdc-source", "--config", "/etc/cdc/cdc-source.toml"]
