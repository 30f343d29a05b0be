//! Client of a Confluent-API schema registry (Confluent, or Apicurio's `/apis/ccompat/v7`).
//!
//! Registration goes straight to `POST /subjects/<subject>/versions` every time a schema is new
//! to the caller (the encoder caches by subject and schema text), so a new version is always
//! registered and its id used. Schemas by id are cached forever (ids are immutable).
//!
//! # TLS and authentication
//! [`Registry::connect`] takes a CA (PEM) trusted for `https://` instead of the system's roots,
//! and basic-auth credentials ([`RegistryAccess`]); `user:password@` in the URL works too. The
//! credentials are sent as an `Authorization` header and removed from the URL the client keeps,
//! so [`Registry::url`] and every error show the URL without them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::RegistryError;

/// A subject's compatibility level (`PUT /config/<subject>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compatibility {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

/// A registered schema version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    pub subject: String,
    pub id: u32,
    pub version: u32,
    pub schema: String,
}

/// Registry client; cheap to clone (shares the HTTP client and the id cache).
#[derive(Debug, Clone)]
pub struct Registry {
    /// Base URL without credentials.
    url: String,
    http: reqwest::Client,
    auth: Option<(String, Password)>,
    /// Whether `schema.registry.ssl.ca.location` replaced the system's CAs (for the advice on a
    /// certificate that does not verify).
    own_ca: bool,
    by_id: Arc<Mutex<HashMap<u32, Arc<str>>>>,
}

/// How to reach a secured registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryAccess {
    /// CA certificate(s), PEM: the only roots trusted for `https://` when set.
    pub ca_pem: Option<Vec<u8>>,
    /// Basic-auth user and password (`basic.auth.user.info`); wins over `user:pw@` in the URL.
    pub user_info: Option<(String, String)>,
}

/// A password that prints as `***`.
#[derive(Clone)]
struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `scheme://user:pw@host/…` split into the URL without credentials and the credentials.
pub fn split_url_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return (url.to_string(), None);
    };
    let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |e| start + e);
    let Some(at) = url[start..end].rfind('@').map(|a| start + a) else {
        return (url.to_string(), None);
    };
    let info = &url[start..at];
    let (user, pw) = info.split_once(':').unwrap_or((info, ""));
    let decode = |s: &str| {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match (b[i], b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    (format!("{}{}", &url[..start], &url[at + 1..]), Some((decode(user), decode(pw))))
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

impl Compatibility {
    /// The level as the registry spells it (`BACKWARD`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::None => "NONE",
            Compatibility::Backward => "BACKWARD",
            Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Compatibility::Forward => "FORWARD",
            Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
            Compatibility::Full => "FULL",
            Compatibility::FullTransitive => "FULL_TRANSITIVE",
        }
    }
}

/// What a failed call was about, to pick the typed error.
enum Call<'a> {
    Register(&'a str),
    ById(u32),
    Subject,
}

impl Registry {
    /// A client for the registry at `url`, e.g. `http://127.0.0.1:18081/apis/ccompat/v7`
    /// (`user:password@` in it is sent as basic auth).
    pub fn new(url: &str) -> Registry {
        let (url, auth) = split_url_credentials(url);
        Registry {
            url: url.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            auth: auth.map(|(u, p)| (u, Password(p))),
            own_ca: false,
            by_id: Arc::default(),
        }
    }

    /// A client for a secured registry: `access.ca_pem` is the only CA trusted for HTTPS, and
    /// `access.user_info` (else `user:pw@` in `url`) is sent as basic auth. Fails on a CA that
    /// does not parse.
    pub fn connect(url: &str, access: &RegistryAccess) -> Result<Registry, RegistryError> {
        let mut registry = Registry::new(url);
        if let Some((user, password)) = &access.user_info {
            registry.auth = Some((user.clone(), Password(password.clone())));
        }
        if let Some(pem) = &access.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| RegistryError::Unreachable {
                url: registry.url.clone(),
                message: format!("the registry CA is not PEM: {}; check schema.registry.ssl.ca.location", e.without_url()),
            })?;
            registry.own_ca = true;
            registry.http = reqwest::Client::builder()
                .tls_certs_only(certs)
                .build()
                .map_err(|e| RegistryError::Unreachable {
                    url: registry.url.clone(),
                    message: format!("cannot set up TLS: {}; check schema.registry.ssl.ca.location", e.without_url()),
                })?;
        }
        Ok(registry)
    }

    /// Base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn unreachable(&self, e: &reqwest::Error) -> RegistryError {
        RegistryError::Unreachable {
            url: self.url.clone(),
            message: explain(&error_chain(e), self.own_ca),
        }
    }

    /// Sends a request; returns `Ok(None)` on 404 and a typed error on other failures.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        call: Call<'_>,
    ) -> Result<Option<serde_json::Value>, RegistryError> {
        let request = match &self.auth {
            Some((user, password)) => request.basic_auth(user, Some(&password.0)),
            None => request,
        };
        let response = request
            .header(reqwest::header::ACCEPT, CONTENT_TYPE)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if (200..300).contains(&status) {
            return Ok(Some(body));
        }
        let code = body
            .get("error_code")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        let message = body
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("no message")
            .to_string();
        Err(match (status, call) {
            (409, Call::Register(subject)) => RegistryError::Incompatible {
                subject: subject.to_string(),
                message,
            },
            (422, Call::Register(subject)) => RegistryError::InvalidSchema {
                subject: subject.to_string(),
                message,
            },
            (404, Call::ById(id)) => RegistryError::UnknownSchemaId { id },
            (404, Call::Subject) => return Ok(None),
            (401 | 403, _) => RegistryError::Http {
                status,
                code,
                message: format!(
                    "{message}: the registry refused the credentials; check basic.auth.user.info (or user:password@ in schema.registry.url)"
                ),
            },
            _ => RegistryError::Http {
                status,
                code,
                message,
            },
        })
    }

    fn subject_url(&self, subject: &str, rest: &str) -> String {
        format!(
            "{}/subjects/{}{rest}",
            self.url,
            subject.replace('/', "%2F")
        )
    }

    /// Registers an Avro schema under `subject` (or finds it if already registered); its id.
    /// A schema new to the subject is checked against the subject's compatibility level.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let request = self
            .http
            .post(self.subject_url(subject, "/versions"))
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .json(&serde_json::json!({"schema": schema, "schemaType": "AVRO"}));
        let body = self.send(request, Call::Register(subject)).await?;
        let id = body
            .as_ref()
            .and_then(|b| b.get("id"))
            .and_then(serde_json::Value::as_u64)
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| RegistryError::Http {
                status: 200,
                code: 0,
                message: format!("registration answer without an id: {body:?}"),
            })?;
        tracing::debug!(subject, id, "schema registered");
        Ok(id)
    }

    /// The subjects (`GET /subjects`): a reachability and credentials check.
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        let body = self.send(self.http.get(format!("{}/subjects", self.url)), Call::Subject).await?;
        Ok(body
            .as_ref()
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default())
    }

    /// The schema text with this id (cached: ids never change).
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<str>, RegistryError> {
        if let Some(found) = self.cache().get(&id) {
            return Ok(Arc::clone(found));
        }
        let url = format!("{}/schemas/ids/{id}", self.url);
        let body = self.send(self.http.get(url), Call::ById(id)).await?;
        let text: Arc<str> = body
            .as_ref()
            .and_then(|b| b.get("schema"))
            .and_then(serde_json::Value::as_str)
            .ok_or(RegistryError::UnknownSchemaId { id })?
            .into();
        self.cache().insert(id, Arc::clone(&text));
        Ok(text)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<str>>> {
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The latest version registered under `subject`, if the subject exists.
    pub async fn latest(&self, subject: &str) -> Result<Option<RegisteredSchema>, RegistryError> {
        let url = self.subject_url(subject, "/versions/latest");
        let Some(body) = self.send(self.http.get(url), Call::Subject).await? else {
            return Ok(None);
        };
        let number = |k: &str| {
            body.get(k)
                .and_then(serde_json::Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or_default()
        };
        Ok(Some(RegisteredSchema {
            subject: subject.to_string(),
            id: number("id"),
            version: number("version"),
            schema: body
                .get("schema")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }))
    }

    /// Sets the compatibility level of `subject`.
    pub async fn set_compatibility(
        &self,
        subject: &str,
        level: Compatibility,
    ) -> Result<(), RegistryError> {
        let url = format!("{}/config/{}", self.url, subject.replace('/', "%2F"));
        let request = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .json(&serde_json::json!({"compatibility": level.as_str()}));
        self.send(request, Call::Register(subject)).await?;
        Ok(())
    }
}

/// A reqwest error with its causes (the TLS reason is in a source), without the URL.
/// The error and its causes, outermost first, each once (TLS libraries repeat their message as
/// the source of their own error).
fn error_chain(e: &reqwest::Error) -> Vec<String> {
    let mut chain = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !chain.iter().any(|c| c.contains(text.trim_end_matches(':'))) {
            chain.push(text);
        }
        source = cause.source();
    }
    chain
}

/// What a failed request's error `chain` means and what to do about it: the cause first (a
/// certificate that does not verify, a refused connection, a name that does not resolve), the
/// setting that fixes it, then the chain as reqwest reported it. `own_ca`: the client trusts only
/// the CA of `schema.registry.ssl.ca.location`.
fn explain(chain: &[String], own_ca: bool) -> String {
    let all = chain.join(": ");
    let lower = all.to_lowercase();
    let found = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let cause = if found(&["certificate verify failed", "invalid peer certificate", "unknownissuer", "self signed certificate", "self-signed certificate", "unable to get local issuer"]) {
        // OpenSSL says why in parentheses: "(unable to get local issuer certificate)".
        let why = all
            .split_once("certificate verify failed")
            .and_then(|(_, rest)| Some(rest[rest.find('(')? + 1..].split(')').next()?.to_string()))
            .unwrap_or_else(|| "the certificate does not verify".into());
        if why.contains("hostname") || why.contains("IP address mismatch") {
            format!("TLS certificate verify failed ({why}): the registry's certificate does not name the host of schema.registry.url; use a host name the certificate lists")
        } else if own_ca {
            format!("TLS certificate verify failed ({why}): the registry's certificate is not signed by the CA in schema.registry.ssl.ca.location; point that key at the PEM of the CA that signed it")
        } else {
            format!("TLS certificate verify failed ({why}): the registry's certificate is not signed by a CA this host trusts; set schema.registry.ssl.ca.location to the PEM of the CA that signed it")
        }
    } else if found(&["wrong version number", "packet length too long", "http request to an https server"]) {
        "TLS handshake failed: the registry does not speak TLS on this port; use http:// in schema.registry.url, or the registry's HTTPS port".to_string()
    } else if found(&["connection refused"]) {
        "connection refused: nothing listens at that host and port; check schema.registry.url and that the registry runs".to_string()
    } else if found(&["dns error", "failed to lookup address", "name or service not known"]) {
        "the registry's host name does not resolve; check schema.registry.url".to_string()
    } else if found(&["timed out", "operation timed out"]) {
        "no answer in time: the registry or the network path to it does not answer; check schema.registry.url and that the registry runs".to_string()
    } else {
        "check schema.registry.url and that the registry runs".to_string()
    };
    format!("{cause} [{all}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        let (url, auth) = split_url_credentials("https://u:p%40ss@reg:8081/apis/ccompat/v7");
        assert_eq!(url, "https://reg:8081/apis/ccompat/v7");
        assert_eq!(auth, Some(("u".into(), "p@ss".into())));
        let r = Registry::new("https://u:hunter2@reg/x/");
        assert_eq!(r.url(), "https://reg/x");
        assert!(!format!("{r:?}").contains("hunter2"));
        assert_eq!(split_url_credentials("http://reg/a@b").1, None);
    }

    /// The chain reqwest (native-tls, OpenSSL 3) gives for a certificate of an unknown CA.
    fn unknown_ca_chain() -> Vec<String> {
        vec![
            "error sending request for url (https://127.0.0.1:1/apis/ccompat/v7/subjects)".into(),
            "client error (Connect)".into(),
            "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889: (unable to get local issuer certificate)".into(),
        ]
    }

    #[test]
    fn an_unknown_ca_is_named_with_the_key_that_fixes_it() {
        let text = explain(&unknown_ca_chain(), false);
        assert!(text.starts_with("TLS certificate verify failed (unable to get local issuer certificate): "), "{text}");
        assert!(text.contains("set schema.registry.ssl.ca.location"), "{text}");
        assert!(!text.contains("registry runs"), "{text}");
        let text = explain(&unknown_ca_chain(), true);
        assert!(text.contains("not signed by the CA in schema.registry.ssl.ca.location"), "{text}");
        // rustls spells it differently.
        let rustls = ["error sending request".to_string(), "invalid peer certificate: UnknownIssuer".to_string()];
        assert!(explain(&rustls, false).starts_with("TLS certificate verify failed"), "{}", explain(&rustls, false));
    }

    #[test]
    fn other_causes_are_named() {
        let refused = ["error sending request for url (http://127.0.0.1:1/)".to_string(), "client error (Connect)".into(), "tcp connect error".into(), "Connection refused (os error 111)".into()];
        assert!(explain(&refused, false).starts_with("connection refused: "), "{}", explain(&refused, false));
        let plain = ["error sending request".to_string(), "error:0A00010B:SSL routines:ssl3_get_record:wrong version number".into()];
        assert!(explain(&plain, false).contains("does not speak TLS"), "{}", explain(&plain, false));
        let other = ["error sending request".to_string()];
        assert_eq!(explain(&other, false), "check schema.registry.url and that the registry runs [error sending request]");
    }
}
