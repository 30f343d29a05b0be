//! A TLS-terminating, basic-auth-checking loopback proxy in front of the real schema registry,
//! for the registry's TLS and authentication tests: Apicurio's own HTTPS and auth setup needs an
//! identity server, so the tests put this in front of the stack's plain-HTTP registry instead.
//!
//! It generates a CA and a server certificate for `127.0.0.1` and `localhost` with `openssl`
//! ([`TlsProxy::ca_pem`] is the CA to trust), listens on a free loopback port, and for each
//! connection reads the first request's head: without `Authorization: Basic` of the expected
//! user and password it answers `401` and closes; otherwise it passes the bytes both ways to the
//! registry. A client sends its credentials with every request, so checking each connection's
//! first request is enough to tell right from wrong credentials.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug)]
pub struct TlsProxy {
    /// `https://127.0.0.1:<port>` plus the registry URL's path.
    pub url: String,
    dir: PathBuf,
    /// Requests refused for wrong or missing credentials.
    refused: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TlsProxy {
    /// Starts the proxy in front of `registry_url` (`http://host:port/path`), accepting `user` and
    /// `password` only.
    pub async fn start(registry_url: &str, user: &str, password: &str) -> TlsProxy {
        let rest = registry_url.strip_prefix("http://").expect("the stack's registry URL is http://");
        let (upstream, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        let dir = std::env::temp_dir().join(format!("cdc-tests-tls-proxy-{}-{}", std::process::id(), crate::next_counter()));
        std::fs::create_dir_all(&dir).expect("proxy dir");
        openssl(&dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=proxy CA", "-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(&dir, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"]);
        std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
        openssl(&dir, &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "server.pem"]);
        let cert = std::fs::read(dir.join("server.pem")).expect("server.pem");
        let key = std::fs::read(dir.join("server.key")).expect("server.key");
        let identity = native_tls::Identity::from_pkcs8(&cert, &key).expect("proxy identity");
        let acceptor = tokio_native_tls::TlsAcceptor::from(native_tls::TlsAcceptor::new(identity).expect("TLS acceptor"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let refused = Arc::new(AtomicU64::new(0));
        let upstream = upstream.to_string();
        let counter = Arc::clone(&refused);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, upstream, expected, refused) =
                    (acceptor.clone(), upstream.clone(), expected.clone(), Arc::clone(&counter));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let _ = serve(tls, &upstream, &expected, &refused).await;
                });
            }
        });
        TlsProxy { url: format!("https://127.0.0.1:{port}/{path}"), dir, refused, task }
    }

    /// The CA that signed the proxy's certificate (PEM file).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// How many connections were refused for wrong or missing credentials.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn serve(
    mut tls: tokio_native_tls::TlsStream<TcpStream>,
    upstream: &str,
    expected: &str,
    refused: &AtomicU64,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let authorized = text
        .lines()
        .filter(|l| l.len() > 14 && l[..14].eq_ignore_ascii_case("authorization:"))
        .any(|l| l[14..].trim() == expected);
    if !authorized {
        refused.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"error_code":401,"message":"Unauthorized"}"#;
        let answer = format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"registry\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(answer.as_bytes()).await?;
        return tls.shutdown().await;
    }
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&head).await?;
    tokio::io::copy_bidirectional(&mut tls, &mut up).await.map(|_| ())
}
