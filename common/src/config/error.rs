//! [`ConfigError`]: why a config cannot be used. Its own module so that reading the file
//! ([`super::file`]) and loading ([`super`]) both use it without importing each other.

use std::path::PathBuf;

/// A config that cannot be used; the message names the file or the exact key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("config file {path} looks like JSON but is not a Kafka Connect connector config ({{\"name\": …, \"config\": {{…}}}}): {message}")]
    Json { path: PathBuf, message: String },
    #[error("{0}")]
    UnknownKeys(String),
    /// A value that does not parse or does not validate; the message starts with the key.
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    /// A missing or unparsable value found while deserializing; the message names the key.
    #[error("{0}")]
    Value(String),
}

impl ConfigError {
    /// A validation failure of one key, for the services' `validate()`.
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
}
