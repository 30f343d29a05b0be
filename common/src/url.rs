//! `connection.url` in the spellings users bring from Kafka Connect and MySQL tools:
//! `jdbc:mysql://host:port/db?user=u&password=p`, `jdbc:mariadb://…`, `mysql://user:pw@host:port/db`
//! and `mariadb://…`. The port defaults to 3306. Connections are always TCP, also to `localhost`
//! (`prefer_socket(false)`): a unix socket of another server on the same machine is never used.

use std::fmt;

use crate::Secret;

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
}

/// Why a `connection.url` could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("`{url}` is not a MariaDB connection URL: {reason}; expected jdbc:mysql://host:port/database or mysql://user@host:port/database")]
pub struct UrlError {
    url: String,
    reason: &'static str,
}

const SCHEMES: &[&str] = &["jdbc:mysql://", "jdbc:mariadb://", "mysql://", "mariadb://"];

impl ConnectionUrl {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let err = |reason| UrlError {
            url: redact(url),
            reason,
        };
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
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("user", v)) => user = Some(v.to_string()),
                Some(("password", v)) => password = Some(Secret::new(v)),
                _ => {}
            }
        }
        Ok(ConnectionUrl {
            host: host.to_string(),
            port,
            database: Some(path.trim_end_matches('/').to_string()).filter(|d| !d.is_empty()),
            user,
            password,
        })
    }

    /// mysql_async options over TCP. `user` / `password` (from `connection.user` /
    /// `connection.password`) win over those in the URL.
    pub fn opts(&self, user: Option<&str>, password: Option<&Secret>) -> mysql_async::OptsBuilder {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .prefer_socket(false)
            .db_name(self.database.clone())
            .user(user.map(str::to_string).or_else(|| self.user.clone()))
            .pass(
                password
                    .or(self.password.as_ref())
                    .map(|p| p.expose().to_string()),
            )
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
}
