//! `connection.url` in the spellings users bring from Kafka Connect and MySQL tools:
//! `jdbc:mysql://host:port/db?user=u&password=p`, `jdbc:mariadb://…`, `mysql://user:pw@host:port/db`
//! and `mariadb://…`. The port defaults to 3306. Connections are always TCP, also to `localhost`
//! (`prefer_socket(false)`): a unix socket of another server on the same machine is never used.
//! Every connection has TCP keepalive ([`TCP_KEEPALIVE`]), so the kernel eventually notices a peer
//! that vanished; the services bound each round trip with their own timeouts on top.
//!
//! # Query options
//! Every option in the query string is understood or refused with an error naming it; none is
//! dropped. `user` and `password` set the account; the TLS options below set [`Tls`]; a few JDBC
//! driver options that change nothing for these services are accepted and have no effect
//! ([`NO_EFFECT_OPTIONS`]). Option names are matched without regard to case.
//!
//! # TLS (one mapping for both services)
//! | URL option (Connector/J spelling) | config key | meaning |
//! |---|---|---|
//! | `sslMode=disable` / `DISABLED`, `useSSL=false` | `connection.ssl.mode=disable` | plaintext (the default) |
//! | `sslMode=PREFERRED` / `prefer` | `connection.ssl.mode=prefer` | TLS without verifying the server; a server without TLS is refused (set `disable` for it) |
//! | `sslMode=trust` / `REQUIRED` / `require`, `useSSL=true` (`requireSSL=true`) | `connection.ssl.mode=require` | TLS without verifying the server |
//! | `sslMode=verify-ca` / `VERIFY_CA`, `useSSL=true&verifyServerCertificate=true` | `connection.ssl.mode=verify-ca` | TLS, server certificate signed by the CA |
//! | `sslMode=verify-full` / `VERIFY_IDENTITY` | `connection.ssl.mode=verify-full` | also: the certificate names the URL's host |
//! | `serverSslCert=/ca.pem` (a path or the PEM text) | `connection.ssl.ca` | CA certificate(s), PEM; only these are trusted then (else the system's) |
//! | – | `connection.ssl.cert` + `connection.ssl.key` | client certificate and its private key, PEM |
//!
//! `sslMode` wins over `useSSL` / `requireSSL` / `verifyServerCertificate` (as in Connector/J 8);
//! the `connection.ssl.*` keys win over the URL. Java key stores (`trustCertificateKeyStoreUrl`,
//! `keyStore`, …) are refused with the PEM key to use instead. A CA or client certificate with
//! mode `disable` is an error (it would be ignored).

use std::fmt;
use std::path::Path;

use crate::Secret;

/// Idle time before the kernel sends TCP keepalive probes on a MariaDB connection.
pub const TCP_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// JDBC driver options that are accepted in `connection.url` and change nothing here: the
/// services always speak utf8mb4, UTC-free binary protocol values and their own batching.
pub const NO_EFFECT_OPTIONS: &[&str] = &[
    "nullDatabaseMeansCurrent",
    "serverTimezone",
    "useUnicode",
    "characterEncoding",
    "allowPublicKeyRetrieval",
    "rewriteBatchedStatements",
];

/// Java key store options and the PEM key to use instead.
const KEY_STORE_OPTIONS: &[(&str, &str)] = &[
    ("trustCertificateKeyStoreUrl", "serverSslCert= in the URL or connection.ssl.ca"),
    ("trustCertificateKeyStorePassword", "serverSslCert= in the URL or connection.ssl.ca"),
    ("trustStore", "serverSslCert= in the URL or connection.ssl.ca"),
    ("trustStorePassword", "serverSslCert= in the URL or connection.ssl.ca"),
    ("clientCertificateKeyStoreUrl", "connection.ssl.cert and connection.ssl.key"),
    ("clientCertificateKeyStorePassword", "connection.ssl.cert and connection.ssl.key"),
    ("keyStore", "connection.ssl.cert and connection.ssl.key"),
    ("keyStorePassword", "connection.ssl.cert and connection.ssl.key"),
];

/// How the connection is secured (see the module doc for the spellings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    #[default]
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Parses any spelling of the module doc's table (case-insensitive).
    pub fn parse(value: &str) -> Option<SslMode> {
        Some(match value.to_ascii_lowercase().replace('_', "-").as_str() {
            "disable" | "disabled" => SslMode::Disable,
            "prefer" | "preferred" => SslMode::Prefer,
            "require" | "required" | "trust" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" | "verify-identity" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

const MODES: &str = "disable, prefer, require (trust), verify-ca or verify-full (VERIFY_IDENTITY)";

/// TLS settings of a MariaDB connection, with where each came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    pub mode: SslMode,
    /// Where the mode was set (`sslMode` in `connection.url`, `connection.ssl.mode`, …).
    pub mode_key: Option<&'static str>,
    /// CA certificates, PEM (read at validation).
    pub ca: Option<Vec<u8>>,
    pub ca_key: Option<&'static str>,
    /// Client identity as a PKCS#12 archive without password (built from the PEM cert and key).
    identity: Option<Vec<u8>>,
}

/// The `connection.ssl.*` keys of a service's config, applied over the URL's TLS options.
#[derive(Debug, Clone, Default)]
pub struct TlsKeys<'a> {
    pub mode: Option<&'a str>,
    pub ca: Option<&'a str>,
    pub cert: Option<&'a str>,
    pub key: Option<&'a str>,
}

impl Tls {
    /// Applies the `connection.ssl.*` keys (they win over the URL) and checks the result.
    /// Errors are `(key, message)`.
    pub fn apply_keys(&mut self, keys: &TlsKeys<'_>) -> Result<(), (&'static str, String)> {
        if let Some(mode) = keys.mode {
            self.mode = SslMode::parse(mode).ok_or_else(|| {
                ("connection.ssl.mode", format!("`{mode}` is not a TLS mode; use {MODES}"))
            })?;
            self.mode_key = Some("connection.ssl.mode");
        }
        if let Some(ca) = keys.ca {
            self.ca = Some(read_pem("connection.ssl.ca", ca)?);
            self.ca_key = Some("connection.ssl.ca");
        }
        match (keys.cert, keys.key) {
            (Some(cert), Some(key)) => {
                self.identity = Some(pkcs12(cert, key)?);
            }
            (Some(_), None) => {
                return Err(("connection.ssl.key", "is required with connection.ssl.cert (the client certificate's private key, PEM)".into()))
            }
            (None, Some(_)) => {
                return Err(("connection.ssl.cert", "is required with connection.ssl.key (the client certificate, PEM)".into()))
            }
            (None, None) => {}
        }
        if self.mode == SslMode::Disable {
            let mode_key = self.mode_key.unwrap_or("connection.ssl.mode");
            if let Some(ca_key) = self.ca_key {
                return Err((mode_key, format!("is disable (plaintext) but {ca_key} is set; set it to verify-full (or verify-ca) to use the CA")));
            }
            if self.identity.is_some() {
                return Err((mode_key, "is disable (plaintext) but connection.ssl.cert is set; set it to verify-full, verify-ca or require".into()));
            }
        }
        Ok(())
    }

    /// mysql_async's TLS options for this mode (`None` for plaintext).
    fn ssl_opts(&self) -> Option<mysql_async::SslOpts> {
        let mut opts = mysql_async::SslOpts::default();
        match self.mode {
            SslMode::Disable => return None,
            SslMode::Prefer | SslMode::Require => {
                opts = opts
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true);
            }
            SslMode::VerifyCa => opts = opts.with_danger_skip_domain_validation(true),
            SslMode::VerifyFull => {}
        }
        if let Some(ca) = &self.ca {
            opts = opts
                .with_root_certs(vec![ca.clone().into()])
                .with_disable_built_in_roots(true);
        }
        if let Some(archive) = &self.identity {
            opts = opts.with_client_identity(Some(
                mysql_async::ClientIdentity::new(archive.clone().into()).with_password(""),
            ));
        }
        Some(opts)
    }

    /// What to fix when connecting failed with `error`, if it is about TLS: names the key.
    pub fn hint(&self, error: &mysql_async::Error) -> Option<String> {
        let ca_key = self.ca_key.unwrap_or("connection.ssl.ca");
        let mode_key = self.mode_key.unwrap_or("connection.ssl.mode");
        match error {
            mysql_async::Error::Io(mysql_async::IoError::Tls(e)) => {
                let text = e.to_string();
                let host = if text.to_ascii_lowercase().contains("mismatch") {
                    format!("the server's certificate does not name the host of connection.url: connect by a name the certificate lists, or set {mode_key} to verify-ca to skip the host check")
                } else {
                    format!("check {ca_key}: it must hold the CA that signed the server's certificate")
                };
                Some(format!("TLS handshake failed ({mode_key} is {}): {host}", self.mode.as_str()))
            }
            mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => Some(format!(
                "the server does not offer TLS but {mode_key} is {}; enable TLS on the server (ssl-cert, ssl-key) or set {mode_key} to disable",
                self.mode.as_str()
            )),
            // 3159: require_secure_transport; 1045 also answers a user created REQUIRE SSL.
            mysql_async::Error::Server(s) if self.mode == SslMode::Disable && (s.code == 3159 || s.code == 1045) => Some(format!(
                "the server or the account may require TLS and {mode_key} is disable; set connection.ssl.mode=verify-full with connection.ssl.ca (or sslMode=verify-full&serverSslCert=… in connection.url)"
            )),
            mysql_async::Error::Server(s) if s.code == 1045 && self.identity.is_none() => Some(
                "check connection.user and connection.password; if the account is created REQUIRE X509 (or ISSUER/SUBJECT), also set connection.ssl.cert and connection.ssl.key".into(),
            ),
            _ => None,
        }
    }
}

/// A PEM file's text (or `value` itself when it is PEM text, as `serverSslCert` allows).
fn read_pem(key: &'static str, value: &str) -> Result<Vec<u8>, (&'static str, String)> {
    let bytes = if value.trim_start().starts_with("-----BEGIN") {
        value.as_bytes().to_vec()
    } else {
        std::fs::read(Path::new(value)).map_err(|e| (key, format!("cannot read `{value}`: {e}")))?
    };
    openssl::x509::X509::stack_from_pem(&bytes)
        .ok()
        .filter(|certs| !certs.is_empty())
        .ok_or_else(|| (key, format!("`{value}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)")))?;
    Ok(bytes)
}

/// The PEM client certificate and key as a PKCS#12 archive (what the TLS library takes).
fn pkcs12(cert: &str, key: &str) -> Result<Vec<u8>, (&'static str, String)> {
    let cert_pem = read_pem("connection.ssl.cert", cert)?;
    let key_pem = std::fs::read(key).map_err(|e| ("connection.ssl.key", format!("cannot read `{key}`: {e}")))?;
    let mut chain = openssl::x509::X509::stack_from_pem(&cert_pem)
        .map_err(|e| ("connection.ssl.cert", e.to_string()))?
        .into_iter();
    let leaf = chain.next().ok_or(("connection.ssl.cert", "holds no certificate".to_string()))?;
    let pkey = openssl::pkey::PKey::private_key_from_pem(&key_pem)
        .map_err(|e| ("connection.ssl.key", format!("`{key}` is not a PEM private key: {e}")))?;
    let mut rest = openssl::stack::Stack::new().map_err(|e| ("connection.ssl.cert", e.to_string()))?;
    for c in chain {
        rest.push(c).map_err(|e| ("connection.ssl.cert", e.to_string()))?;
    }
    openssl::pkcs12::Pkcs12::builder()
        .name("client")
        .pkey(&pkey)
        .cert(&leaf)
        .ca(rest)
        .build2("")
        .and_then(|p| p.to_der())
        .map_err(|e| ("connection.ssl.key", format!("does not match connection.ssl.cert: {e}")))
}

/// A parsed `connection.url`. `Display` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionUrl {
    pub host: String,
    pub port: u16,
    pub database: Option<String>,
    /// User from `user:pw@` or `?user=`; `connection.user` takes precedence.
    pub user: Option<String>,
    /// Password from `user:pw@` or `?password=`; `connection.password` takes precedence.
    pub password: Option<Secret>,
    /// TLS from the query options; `connection.ssl.*` keys are applied by [`Tls::apply_keys`].
    pub tls: Tls,
}

/// Why a `connection.url` could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(String);

const SCHEMES: &[&str] = &["jdbc:mysql://", "jdbc:mariadb://", "mysql://", "mariadb://"];

impl ConnectionUrl {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let err = |reason: &str| {
            UrlError(format!(
                "`{}` is not a MariaDB connection URL: {reason}; expected jdbc:mysql://host:port/database or mysql://user@host:port/database",
                redact(url)
            ))
        };
        let bad_option = |reason: String| UrlError(format!("`{}`: {reason}", redact(url)));
        let rest = SCHEMES
            .iter()
            .find_map(|s| url.strip_prefix(s))
            .ok_or_else(|| err("unknown scheme"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| err("bad host or port"))?;
        if host.is_empty() {
            return Err(err("no host"));
        }
        let mut user = None;
        let mut password = None;
        if let Some(info) = userinfo {
            let (u, p) = info
                .split_once(':')
                .map_or((info, None), |(u, p)| (u, Some(p)));
            user = Some(u.to_string()).filter(|u| !u.is_empty());
            password = p.map(Secret::new);
        }
        let mut ssl_mode = None;
        let (mut use_ssl, mut require_ssl, mut verify_cert) = (None, None, None);
        let mut tls = Tls::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let flag = |v: &str| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(bad_option(format!("option {name}={v} must be true or false"))),
            };
            match name.to_ascii_lowercase().as_str() {
                "user" => user = Some(value.to_string()),
                "password" => password = Some(Secret::new(value)),
                "sslmode" => {
                    ssl_mode = Some(SslMode::parse(value).ok_or_else(|| {
                        bad_option(format!("option sslMode={value} is not a TLS mode; use {MODES}"))
                    })?)
                }
                "usessl" => use_ssl = Some(flag(value)?),
                "requiressl" => require_ssl = Some(flag(value)?),
                "verifyservercertificate" => verify_cert = Some(flag(value)?),
                "serversslcert" => {
                    tls.ca = Some(
                        read_pem("connection.url", value)
                            .map_err(|(_, e)| bad_option(format!("option serverSslCert: {e}")))?,
                    );
                    tls.ca_key = Some("serverSslCert in connection.url");
                }
                lower => {
                    if let Some((store, instead)) =
                        KEY_STORE_OPTIONS.iter().find(|(o, _)| o.eq_ignore_ascii_case(lower))
                    {
                        return Err(bad_option(format!(
                            "option {store} is a Java key store, which these services cannot read; give PEM files with {instead}"
                        )));
                    }
                    if !NO_EFFECT_OPTIONS.iter().any(|o| o.eq_ignore_ascii_case(lower)) {
                        return Err(bad_option(format!(
                            "option `{name}` is not understood; remove it (understood: user, password, sslMode, useSSL, requireSSL, verifyServerCertificate, serverSslCert, and without effect: {})",
                            NO_EFFECT_OPTIONS.join(", ")
                        )));
                    }
                }
            }
        }
        tls.mode = match (ssl_mode, use_ssl, require_ssl, verify_cert) {
            (Some(mode), ..) => mode,
            (None, Some(false), ..) => SslMode::Disable,
            (None, _, _, Some(true)) => SslMode::VerifyCa,
            (None, Some(true), ..) | (None, None, Some(true), _) => SslMode::Require,
            _ => SslMode::Disable,
        };
        if ssl_mode.is_some() {
            tls.mode_key = Some("sslMode in connection.url");
        } else if use_ssl.or(require_ssl).or(verify_cert).is_some() {
            tls.mode_key = Some("useSSL in connection.url");
        }
        Ok(ConnectionUrl {
            host: host.to_string(),
            port,
            database: Some(path.trim_end_matches('/').to_string()).filter(|d| !d.is_empty()),
            user,
            password,
            tls,
        })
    }

    /// mysql_async options over TCP. `user` / `password` (from `connection.user` /
    /// `connection.password`) win over those in the URL.
    pub fn opts(&self, user: Option<&str>, password: Option<&Secret>) -> mysql_async::OptsBuilder {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .prefer_socket(false)
            .tcp_keepalive(Some(TCP_KEEPALIVE))
            .db_name(self.database.clone())
            .user(user.map(str::to_string).or_else(|| self.user.clone()))
            .pass(
                password
                    .or(self.password.as_ref())
                    .map(|p| p.expose().to_string()),
            )
            .ssl_opts(self.tls.ssl_opts())
    }
}

impl fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mysql://{}:{}/{}",
            self.host,
            self.port,
            self.database.as_deref().unwrap_or("")
        )
    }
}

fn split_host_port(s: &str) -> Option<(&str, u16)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 3306,
            None => return None,
        };
        return Some((host, port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h, p.parse().ok()?)),
        None => Some((s, 3306)),
    }
}

/// The URL with any password replaced, for error messages.
fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(at) = out.rfind('@') {
        let start = out.find("://").map_or(0, |i| i + 3);
        if let Some(colon) = out[start..at].find(':') {
            out.replace_range(start + colon + 1..at, "***");
        }
    }
    if let Some(i) = out.find("password=") {
        let end = out[i..].find('&').map_or(out.len(), |e| i + e);
        out.replace_range(i + 9..end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_form() {
        let u = ConnectionUrl::parse("jdbc:mysql://localhost:3306/mydb?useSSL=false").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.database.as_deref()),
            ("localhost", 3306, Some("mydb"))
        );
        let u = ConnectionUrl::parse("jdbc:mariadb://db.example:13306/mirror?user=a&password=b")
            .unwrap();
        assert_eq!(u.port, 13306);
        assert_eq!(u.user.as_deref(), Some("a"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("b"));
    }

    #[test]
    fn mysql_form_and_defaults() {
        let u = ConnectionUrl::parse("mysql://root:pw@127.0.0.1/mirror").unwrap();
        assert_eq!((u.port, u.user.as_deref()), (3306, Some("root")));
        assert_eq!(u.to_string(), "mysql://127.0.0.1:3306/mirror");
        let u = ConnectionUrl::parse("mariadb://[::1]:3307").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.database), ("::1", 3307, None));
    }

    #[test]
    fn errors_do_not_show_passwords() {
        let e = ConnectionUrl::parse("postgres://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret") && e.contains("unknown scheme"), "{e}");
        let e = ConnectionUrl::parse("jdbc:mysql://h:x/db?password=secret")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn opts_are_tcp() {
        let u = ConnectionUrl::parse("jdbc:mysql://localhost:3306/mydb").unwrap();
        let opts: mysql_async::Opts = u.opts(Some("root"), Some(&Secret::new("pw"))).into();
        assert!(!opts.prefer_socket());
        assert_eq!(opts.user(), Some("root"));
        assert_eq!(opts.db_name(), Some("mydb"));
    }

    #[test]
    fn tls_options_of_both_connectors() {
        let mode = |q: &str| ConnectionUrl::parse(&format!("jdbc:mysql://h/db?{q}")).unwrap().tls.mode;
        assert_eq!(mode(""), SslMode::Disable);
        assert_eq!(mode("useSSL=false"), SslMode::Disable);
        assert_eq!(mode("useSSL=true&requireSSL=true"), SslMode::Require);
        assert_eq!(mode("useSSL=true&verifyServerCertificate=true"), SslMode::VerifyCa);
        assert_eq!(mode("useSSL=true&requireSSL=true&sslMode=VERIFY_IDENTITY"), SslMode::VerifyFull);
        assert_eq!(mode("sslMode=verify-full"), SslMode::VerifyFull);
        assert_eq!(mode("sslMode=trust"), SslMode::Require);
        assert_eq!(mode("sslMode=VERIFY_CA"), SslMode::VerifyCa);
        assert_eq!(mode("sslmode=preferred"), SslMode::Prefer);
        assert_eq!(mode("nullDatabaseMeansCurrent=true"), SslMode::Disable);
    }

    #[test]
    fn options_not_understood_are_errors_naming_them() {
        for (q, named) in [
            ("sslMode=strict", "sslMode=strict"),
            ("useSsl=maybe", "useSsl=maybe"),
            ("sslCipher=x", "sslCipher"),
            ("trustCertificateKeyStoreUrl=file:/ts.jks", "connection.ssl.ca"),
            ("keyStore=/k.p12", "connection.ssl.cert"),
            ("serverSslCert=/nonexistent/ca.pem", "serverSslCert"),
        ] {
            let e = ConnectionUrl::parse(&format!("jdbc:mariadb://h/db?password=hunter2&{q}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(named) && !e.contains("hunter2"), "{q}: {e}");
        }
    }

    #[test]
    fn keys_win_and_are_checked() {
        let mut tls = ConnectionUrl::parse("jdbc:mysql://h/db?sslMode=require").unwrap().tls;
        let e = tls
            .apply_keys(&TlsKeys { mode: Some("verify-everything"), ..TlsKeys::default() })
            .unwrap_err();
        assert_eq!(e.0, "connection.ssl.mode");
        let e = tls.apply_keys(&TlsKeys { cert: Some("/c.pem"), ..TlsKeys::default() }).unwrap_err();
        assert_eq!(e.0, "connection.ssl.key");
        let e = tls.apply_keys(&TlsKeys { ca: Some("/nonexistent.pem"), ..TlsKeys::default() }).unwrap_err();
        assert_eq!(e.0, "connection.ssl.ca");
        tls.apply_keys(&TlsKeys { mode: Some("VERIFY_IDENTITY"), ..TlsKeys::default() }).unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        let opts: mysql_async::Opts = ConnectionUrl { tls, ..ConnectionUrl::parse("mysql://h/db").unwrap() }
            .opts(None, None)
            .into();
        let ssl = opts.ssl_opts().expect("TLS on");
        assert!(!ssl.skip_domain_validation() && !ssl.accept_invalid_certs());
    }
}
