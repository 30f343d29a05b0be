//! MariaDB over TLS, against a private server started by `stack/up --secure mariadb`:
//! `require_secure_transport=ON`, `cdc_source` and `cdc_sink` created `REQUIRE SSL`, a server
//! certificate for `localhost` only, signed by the stack's CA.
//!
//! - The whole pipeline works with verify-full: the source through the `connection.ssl.*` keys
//!   (with a client certificate, its account altered to `REQUIRE X509`), the sink through
//!   Connector/J options in `connection.url`.
//! - Each misconfiguration stops the service at start, non-zero, with a message naming the key:
//!   a wrong CA, a host the certificate does not name, plaintext to the TLS-only server, and a URL
//!   option that is not understood.

use std::time::Duration;

use cdc_tests::pipeline::{PipelineSetup, USERS_COLUMNS};
use cdc_tests::private::PrivateMariadb;
use cdc_tests::process::{fails_at_start, Service};
use cdc_tests::sink::free_port;

fn path(db: &PrivateMariadb, file: &str) -> String {
    db.tls_dir().join(file).display().to_string()
}

/// The source's TOML config with its `connection.url` host replaced by `host` and `extra` lines.
fn source_config(p: &PipelineSetup, host: &str, extra: &str) -> String {
    let stack = p.stack();
    p.source
        .config("json", &format!("\"http.failed.linger.ms\" = 0\n{extra}"))
        .replace(
            &format!("jdbc:mysql://{}:", stack.mariadb_host),
            &format!("jdbc:mysql://{host}:"),
        )
}

/// The sink's TOML config with `?query` appended to its `connection.url`, and its host replaced.
fn sink_config(p: &PipelineSetup, host: &str, query: &str, extra: &str) -> String {
    let stack = p.mirror_stack();
    p.sink_config(free_port(), &format!("\"http.failed.linger.ms\" = 0\n{extra}"))
        .replace(
            &format!("jdbc:mysql://{}:{}/{}\"", stack.mariadb_host, stack.mariadb_port, p.mirror),
            &format!("jdbc:mysql://{host}:{}/{}{query}\"", stack.mariadb_port, p.mirror),
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_over_verified_tls() {
    let db = PrivateMariadb::start_secure(free_port());
    let p = PipelineSetup::on(db.stack(), "tls_db").await;
    // The source's account must present a client certificate signed by the CA.
    let mut root = db.stack().root_conn(None).await;
    mysql_async::prelude::Queryable::query_drop(&mut root, "ALTER USER 'cdc_source'@'%' REQUIRE X509").await.expect("require X509");
    drop(root);
    let mut source = Service::start(
        "cdc-source",
        &p.source.tag,
        &source_config(
            &p,
            "localhost",
            &format!(
                "\"delete.enabled\" = true\n\"connection.ssl.mode\" = \"verify-full\"\n\
                 \"connection.ssl.ca\" = \"{}\"\n\"connection.ssl.cert\" = \"{}\"\n\"connection.ssl.key\" = \"{}\"\n",
                path(&db, "ca.pem"),
                path(&db, "client.pem"),
                path(&db, "client.key")
            ),
        ),
        "toml",
        &[],
        &[],
    );
    let sink = Service::start(
        "jdbc-sink",
        &p.mirror,
        &sink_config(
            &p,
            "localhost",
            &format!("?useSSL=true&requireSSL=true&sslMode=VERIFY_IDENTITY&serverSslCert={}", path(&db, "ca.pem")),
            "\"delete.enabled\" = true\n\"pk.mode\" = \"record_key\"\n",
        ),
        "toml",
        &[],
        &[],
    );
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    p.exec(&[
        "INSERT INTO users (user_id, pwd, name) VALUES (1, 'a', 'one'), (2, 'b', 'two'), (3, 'c', 'three')",
        "UPDATE users SET name = 'TWO' WHERE user_id = 2",
        "DELETE FROM users WHERE user_id = 3",
    ])
    .await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], Duration::from_secs(90), &[&source, &sink]).await;
    let rows = p.mirror_rows(&format!("SELECT name FROM `{}` ORDER BY user_id", p.topic("users"))).await;
    assert_eq!(rows, vec![vec![Some("one".to_string())], vec![Some("TWO".to_string())]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_mistakes_fail_at_start_naming_the_key() {
    let db = PrivateMariadb::start_secure(free_port());
    let p = PipelineSetup::on(db.stack(), "tls_bad").await;
    let (ca, other) = (path(&db, "ca.pem"), path(&db, "other-ca.pem"));
    let keys = |ca: &str| format!("\"connection.ssl.mode\" = \"verify-full\"\n\"connection.ssl.ca\" = \"{ca}\"\n");

    // The source, configured by keys.
    fails_at_start("cdc-source", "wrong-ca", &source_config(&p, "localhost", &keys(&other)), &["TLS handshake failed", "connection.ssl.ca"]);
    fails_at_start("cdc-source", "wrong-host", &source_config(&p, "127.0.0.1", &keys(&ca)), &["does not name the host", "connection.ssl.mode to verify-ca"]);
    fails_at_start(
        "cdc-source",
        "plaintext",
        &source_config(&p, "localhost", "\"connection.ssl.mode\" = \"disable\"\n"),
        &["require TLS", "connection.ssl.mode"],
    );
    fails_at_start(
        "cdc-source",
        "unknown-option",
        &source_config(&p, "localhost", "").replace(&format!("/{}\"", p.source.database), &format!("/{}?useSSL=true&enabledSslProtocolSuites=TLSv1.3\"", p.source.database)),
        &["connection.url", "enabledSslProtocolSuites", "not understood"],
    );

    // The sink, configured by URL options.
    let url = |ca: &str| format!("?sslMode=verify-full&serverSslCert={ca}");
    fails_at_start("jdbc-sink", "wrong-ca", &sink_config(&p, "localhost", &url(&other), ""), &["TLS handshake failed", "serverSslCert"]);
    fails_at_start("jdbc-sink", "wrong-host", &sink_config(&p, "127.0.0.1", &url(&ca), ""), &["does not name the host", "verify-ca"]);
    fails_at_start("jdbc-sink", "plaintext", &sink_config(&p, "localhost", "?sslMode=DISABLED", ""), &["require TLS", "sslMode"]);
    fails_at_start("jdbc-sink", "unknown-option", &sink_config(&p, "localhost", "?sslMode=trust&sslCipher=AES", ""), &["connection.url", "sslCipher", "not understood"]);
}
