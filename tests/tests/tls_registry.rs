//! The schema registry over HTTPS with basic auth: the stack's registry behind the test's
//! TLS-terminating, credential-checking loopback proxy (cdc_tests::tls_proxy; Apicurio's own
//! HTTPS and auth need an identity server).
//!
//! - Source and sink work in Avro with the proxy's CA and basic auth configured as Connect users
//!   do: `basic.auth.credentials.source=USER_INFO` + `basic.auth.user.info` (the source reads it
//!   through `${file:…:key}`), and `value.converter.`-prefixed keys with `${env:…}` for the sink.
//! - A wrong password stops the source at start and fails the sink's `check`, naming the key.
//! - A registry that does not answer, given as `user:password@` in the URL, is reported without
//!   the password.
//! - No secret appears in any log, `check` output, `/status` or `/connectors/<name>/config`.

use std::time::Duration;

use cdc_tests::pipeline::{PipelineSetup, USERS_COLUMNS};
use cdc_tests::process::{assert_no_secret, http_get as get, run_to_exit, Service};
use cdc_tests::sink::free_port;
use cdc_tests::tls_proxy::TlsProxy;

/// Runs `binary check` with `config`; exit code and output.
fn check(binary: &str, tag: &str, config: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    run_to_exit(binary, tag, config, &["check"], env)
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_over_https_with_basic_auth_and_no_secret_shown() {
    let password = format!("RegPw{}", cdc_tests::next_counter() + std::process::id());
    let wrong = "WrongRegPw0815";
    let p = PipelineSetup::new("tls_reg").await;
    let proxy = TlsProxy::start(&p.stack().registry_url, "reg_user", &password).await;
    let ca = proxy.ca_pem().display().to_string();
    let secrets_file = std::env::temp_dir().join(format!("cdc-tests-tls-reg-{}.properties", p.source.database));
    std::fs::write(&secrets_file, format!("registry.user.info=reg_user:{password}\n")).expect("secrets file");

    // Source: the registry keys as Confluent's serializer spells them, the secret from a file.
    let source_port = free_port();
    let source_config = |user_info: &str| {
        p.source
            .config(
                "avro",
                &format!(
                    "\"delete.enabled\" = true\n\"basic.auth.credentials.source\" = \"USER_INFO\"\n\
                     \"schema.registry.basic.auth.user.info\" = \"{user_info}\"\n\
                     \"schema.registry.ssl.ca.location\" = \"{ca}\"\n\"http.failed.linger.ms\" = 0\n"
                ),
            )
            .replace(&p.stack().registry_url, &proxy.url)
            .replace("\"http.listen\" = \"127.0.0.1:0\"", &format!("\"http.listen\" = \"127.0.0.1:{source_port}\""))
    };
    let good_source = source_config(&format!("${{file:{}:registry.user.info}}", secrets_file.display()));
    // Sink: the keys under value.converter. as in a connector JSON, the secret from the environment.
    let sink_port = free_port();
    let sink_config = p
        .sink_config(
            sink_port,
            &format!(
                "\"delete.enabled\" = true\n\"pk.mode\" = \"record_key\"\n\
                 \"value.converter.basic.auth.credentials.source\" = \"USER_INFO\"\n\
                 \"value.converter.basic.auth.user.info\" = \"reg_user:${{env:TEST_REGISTRY_PW}}\"\n\
                 \"value.converter.schema.registry.ssl.ca.location\" = \"{ca}\"\n"
            ),
        )
        .replace(&p.stack().registry_url, &proxy.url);
    let sink_env = [("TEST_REGISTRY_PW", password.as_str())];

    let mut outputs = Vec::new();
    let (code, out) = check("cdc-source", &p.source.tag, &good_source, &[]);
    assert_eq!(code, Some(0), "cdc-source check with the right credentials:\n{out}");
    outputs.push(("cdc-source check", out));
    let (code, out) = check("jdbc-sink", &p.mirror, &sink_config, &sink_env);
    assert_eq!(code, Some(0), "jdbc-sink check with the right credentials:\n{out}");
    outputs.push(("jdbc-sink check", out));

    let mut source = Service::start("cdc-source", &p.source.tag, &good_source, "toml", &[], &[]);
    let sink = Service::start("jdbc-sink", &p.mirror, &sink_config, "toml", &[], &sink_env);
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    p.exec(&[
        "INSERT INTO users (user_id, pwd, name) VALUES (1, 'a', 'one'), (2, 'b', 'two'), (3, 'c', 'three')",
        "UPDATE users SET name = 'TWO' WHERE user_id = 2",
        "DELETE FROM users WHERE user_id = 3",
    ])
    .await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], Duration::from_secs(90), &[&source, &sink]).await;
    assert_eq!(proxy.refused(), 0, "the proxy refused requests with the right credentials");
    for (port, name) in [(source_port, &p.source.name), (sink_port, &p.sink_name)] {
        for path in ["/status".to_string(), format!("/connectors/{name}/status"), format!("/connectors/{name}/config")] {
            outputs.push(("HTTP", format!("GET {path}: {}", get(port, &path).await)));
        }
    }
    let config = get(sink_port, &format!("/connectors/{}/config", p.sink_name)).await;
    assert!(config.contains("${env:TEST_REGISTRY_PW}") || config.contains("value.converter.basic.auth.user.info"), "{config}");
    outputs.push(("cdc-source log", source.log_text()));
    outputs.push(("jdbc-sink log", sink.log_text()));
    drop(sink);
    drop(source);

    // A wrong password: the source stops at start, the sink's check fails; both name the key.
    let mut bad = Service::start("cdc-source", &p.source.tag, &source_config(&format!("reg_user:{wrong}")), "toml", &[], &[]);
    let code = bad.wait(Duration::from_secs(60));
    let log = bad.log_text();
    assert!(matches!(code, Some(c) if c != 0), "cdc-source with a wrong registry password should exit non-zero, got {code:?}:\n{log}");
    assert!(log.contains("basic.auth.user.info") && log.contains("401"), "{log}");
    outputs.push(("cdc-source with a wrong password", log));
    let (code, out) = check("jdbc-sink", &p.mirror, &sink_config, &[("TEST_REGISTRY_PW", wrong)]);
    assert!(matches!(code, Some(c) if c != 0) && out.contains("basic.auth.user.info"), "jdbc-sink check with a wrong password:\n{out}");
    outputs.push(("jdbc-sink check with a wrong password", out));
    assert!(proxy.refused() >= 2, "the proxy saw no wrong credentials");

    // A registry that does not answer, credentials in the URL: the error shows the URL without them.
    let down = good_source.replace(&proxy.url, &format!("https://reg_user:{password}@127.0.0.1:1/apis/ccompat/v7"));
    let (code, out) = check("cdc-source", &p.source.tag, &down, &[]);
    assert!(matches!(code, Some(c) if c != 0) && out.contains("https://127.0.0.1:1/apis/ccompat/v7"), "{out}");
    outputs.push(("cdc-source check, registry down", out));
    let sink_down = sink_config.replace(&proxy.url, &format!("https://reg_user:{password}@127.0.0.1:1/apis/ccompat/v7"));
    let (code, out) = check("jdbc-sink", &p.mirror, &sink_down, &sink_env);
    assert!(matches!(code, Some(c) if c != 0) && out.contains("https://127.0.0.1:1/apis/ccompat/v7"), "{out}");
    outputs.push(("jdbc-sink check, registry down", out));

    for (what, text) in &outputs {
        assert_no_secret(what, text, &[&password, wrong]);
    }
    let _ = std::fs::remove_file(&secrets_file);
}
