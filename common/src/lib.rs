//! What both services (`cdc-source`, `jdbc-sink`) share, so neither copies the other.
//!
//! # API
//! - **Config** ([`config`]): [`load`]`::<T>(path, &`[`ConfigSpec`]`)` reads a TOML file or a Kafka
//!   Connect connector JSON (detected by content) into the service's serde struct `T`, whose fields
//!   are renamed to the dotted Connect keys (`#[serde(rename = "batch.size")]`). Values may be
//!   strings (`"true"`, `"3000"`) as in Connect; lists are comma-separated. Every key is
//!   overridable by `<env_prefix><KEY>` (`CDC_SINK_BATCH_SIZE` for `batch.size`). `kafka.*` keys
//!   (a `[kafka]` table) come back in [`Loaded::kafka`] for librdkafka. Unknown keys are an error
//!   naming the key and close spellings; Connect keys without meaning here are collected in
//!   [`Loaded::ignored`] ([`Loaded::warn_ignored`] logs them once). [`ConfigError::invalid`]
//!   builds validation errors that name the key.
//! - **Secrets** outside the file: `${env:NAME}`, `${file:/path:key}`, `${file:/path}` in any
//!   value ([`providers`]). **Registry security** keys (`basic.auth.user.info`,
//!   `schema.registry.ssl.ca.location`, under Connect's prefixes) come back in [`Loaded::registry`].
//! - **Kafka clients** ([`kafka`]): Kafka Connect's security spellings (`security.protocol`,
//!   `sasl.jaas.config`, PEM trust/key stores) become librdkafka settings in [`Loaded::kafka`], a
//!   Java-only form is an error naming the key; [`kafka::client_config`] gives a producer, consumer
//!   or admin client the settings of its kind ([`kafka::Role`]); [`kafka::probe`] asks a cluster
//!   for metadata and names why it could not (credentials, TLS, security protocol, unreachable).
//! - [`Secret`]: a credential that prints as `***` (Debug, Display, Serialize).
//! - [`ConnectionUrl`]: `jdbc:mysql://`, `jdbc:mariadb://`, `mysql://`, `mariadb://` URLs to
//!   host/port/database and [`Tls`] (JDBC `sslMode`/`useSSL`/`serverSslCert`, refined by the
//!   `connection.ssl.*` keys through [`Tls::apply_keys`]); [`ConnectionUrl::opts`] gives
//!   mysql_async options that always use TCP and carry the TLS settings. An option that is not
//!   understood is an error naming it.
//! - **Telemetry**: [`init_logging`] (`RUST_LOG`; text or JSON from `LOG_FORMAT` or the config),
//!   [`serve_http`] serving `/metrics` from a prometheus-client [`Registry`], `/health`,
//!   `/ready` and `/status` from the service's [`ServiceStatus`], and Kafka Connect's read-only
//!   REST shapes (`/connectors`, `/connectors/<name>/status`, `/config`, …) for the service's one
//!   [`Connector`] ([`connect_api`]; secrets masked by [`connect_api::mask_config`]).
//! - **Shutdown**: [`shutdown_on_signals`] returns a `CancellationToken` cancelled on
//!   SIGTERM/SIGINT; the services' loops take the token and drain when it fires.
//! - [`Backoff`]: exponential delays for retrying transient errors without skipping work.
//!
//! # Guarantees
//! Nothing here prints a [`Secret`]; the config shown over HTTP has every credential masked. A
//! config that loads has no unknown keys and every value parsed into its field's type; everything
//! else a service must check in its own `validate()`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod backoff;
pub mod config;
pub mod connect_api;
mod http;
pub mod kafka;
mod logging;
pub mod providers;
mod secret;
mod shutdown;
mod url;

pub use backoff::Backoff;
pub use config::{env_name, load, ConfigError, ConfigSpec, Loaded, RegistryKeys, CONNECT_FRAMEWORK_KEYS};
pub use connect_api::{ConnectState, Connector, ConnectorState, ConnectorType};
pub use axum::Router as HttpRoutes;
pub use http::{serve_http, HttpServer, ServiceStatus};
pub use logging::{init_logging, LogFormat};
pub use prometheus_client::registry::Registry;
pub use secret::Secret;
pub use shutdown::shutdown_on_signals;
pub use tokio_util::sync::CancellationToken;
pub use url::{ConnectionUrl, SslMode, Tls, TlsKeys, UrlError, NO_EFFECT_OPTIONS};
