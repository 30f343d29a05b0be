//! Kafka over TLS and SASL, against a private broker started by `stack/up --secure kafka`
//! (SASL_SSL with SCRAM-SHA-512/256 and PLAIN, SSL with a required client certificate, both with
//! a certificate signed by the stack's CA; the PLAINTEXT listener serves the tests' own readers).
//!
//! - The whole pipeline secured on every connection, in both formats: MariaDB TLS-only with
//!   verify-full, Kafka SASL_SSL with SCRAM (the source configured in Kafka Connect's spelling —
//!   `security.protocol`, `sasl.jaas.config` with the password from `${file:…}`, a PEM trust
//!   store —, the sink in librdkafka's under `kafka.` with `${env:…}`), the registry over HTTPS
//!   with basic auth (Avro). No secret shows in any log, `check` output, `/status`, `/metrics` or
//!   `/connectors/<name>/config`.
//! - Mutual TLS without SASL (the sink's client key store as Java's PEM key store spelling).
//! - Each mistake stops a service at start, non-zero, naming the cause and the key: a wrong SCRAM
//!   password, plaintext to the TLS-only listener, a wrong CA, no client certificate where one is
//!   required, a Java trust store, SASL without a mechanism.

use std::time::Duration;

use cdc_tests::pipeline::{PipelineSetup, USERS_COLUMNS};
use cdc_tests::private::{PrivateKafka, PrivateMariadb};
use cdc_tests::process::{assert_no_secret, fails_at_start, http_get, run_to_exit, Service};
use cdc_tests::sink::free_port;
use cdc_tests::tls_proxy::TlsProxy;
use cdc_tests::Stack;

/// `config` with its `bootstrap.servers` moved from the PLAINTEXT listener to `port`.
fn on_listener(config: &str, stack: &Stack, port: u16) -> String {
    config.replace(
        &format!("\"bootstrap.servers\" = \"{}\"", stack.kafka_bootstrap),
        &format!("\"bootstrap.servers\" = \"127.0.0.1:{port}\""),
    )
}

const DML: &[&str] = &[
    "INSERT INTO users (user_id, pwd, name) VALUES (1, 'a', 'one'), (2, 'b', 'two'), (3, 'c', 'three')",
    "UPDATE users SET name = 'TWO' WHERE user_id = 2",
    "DELETE FROM users WHERE user_id = 3",
];

#[tokio::test(flavor = "multi_thread")]
async fn secured_pipeline_in_both_formats_without_showing_a_secret() {
    let db = PrivateMariadb::start_secure(free_port());
    let kafka = PrivateKafka::start_secure();
    let stack = kafka.on(db.stack());
    let registry_password = format!("RegPw{}x{}", std::process::id(), cdc_tests::next_counter());
    let proxy = TlsProxy::start(&stack.registry_url, "reg_user", &registry_password).await;
    let secrets = std::env::temp_dir().join(format!("cdc-tests-tls-kafka-{}.properties", kafka.port));
    std::fs::write(&secrets, format!("kafka.password={}\n", kafka.password)).expect("secrets file");
    let db_ca = db.tls_dir().join("ca.pem").display().to_string();
    let env = [("TEST_KAFKA_PW", kafka.password.as_str()), ("TEST_REGISTRY_PW", registry_password.as_str())];

    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut running = Vec::new();
    for format in ["avro", "json"] {
        let p = PipelineSetup::on(stack.clone(), &format!("tlsk_{format}")).await;
        let source_port = free_port();
        let source_config = on_listener(
            &p.source
                .config(
                    format,
                    &format!(
                        "\"delete.enabled\" = true\n\"http.failed.linger.ms\" = 0\n\
                         \"connection.ssl.mode\" = \"verify-full\"\n\"connection.ssl.ca\" = \"{db_ca}\"\n\
                         \"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\
                         \"sasl.jaas.config\" = 'org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"${{file:{secrets}:kafka.password}}\";'\n\
                         \"ssl.truststore.type\" = \"PEM\"\n\"ssl.truststore.location\" = \"{kafka_ca}\"\n\
                         \"basic.auth.credentials.source\" = \"USER_INFO\"\n\
                         \"schema.registry.basic.auth.user.info\" = \"reg_user:${{env:TEST_REGISTRY_PW}}\"\n\
                         \"schema.registry.ssl.ca.location\" = \"{registry_ca}\"\n",
                        user = PrivateKafka::USER,
                        secrets = secrets.display(),
                        kafka_ca = kafka.tls_file("ca.pem"),
                        registry_ca = proxy.ca_pem().display(),
                    ),
                )
                .replace(&stack.registry_url, &proxy.url)
                .replace("\"http.listen\" = \"127.0.0.1:0\"", &format!("\"http.listen\" = \"127.0.0.1:{source_port}\"")),
            &stack,
            kafka.sasl_ssl_port,
        );
        let sink_port = free_port();
        let sink_config = on_listener(
            &format!(
                "{}\"security.protocol\" = \"sasl_ssl\"\n\"sasl.mechanism\" = \"SCRAM-SHA-256\"\n\
                 \"sasl.username\" = \"{user}\"\n\"sasl.password\" = \"${{env:TEST_KAFKA_PW}}\"\n\
                 \"ssl.ca.location\" = \"{kafka_ca}\"\n",
                p.sink_config(
                    sink_port,
                    &format!(
                        "\"delete.enabled\" = true\n\"pk.mode\" = \"record_key\"\n\"http.failed.linger.ms\" = 0\n\
                         \"value.converter.basic.auth.credentials.source\" = \"USER_INFO\"\n\
                         \"value.converter.basic.auth.user.info\" = \"reg_user:${{env:TEST_REGISTRY_PW}}\"\n\
                         \"value.converter.schema.registry.ssl.ca.location\" = \"{}\"\n",
                        proxy.ca_pem().display()
                    ),
                )
                .replace(&stack.registry_url, &proxy.url)
                .replace(&format!("/{}\"", p.mirror), &format!("/{}?sslMode=verify-full&serverSslCert={db_ca}\"", p.mirror)),
                user = PrivateKafka::USER,
                kafka_ca = kafka.tls_file("ca.pem"),
            ),
            &stack,
            kafka.sasl_ssl_port,
        );
        for (binary, tag, config) in [("cdc-source", &p.source.tag, &source_config), ("jdbc-sink", &p.mirror, &sink_config)] {
            let (code, out) = run_to_exit(binary, tag, config, &["check"], &env);
            assert_eq!(code, Some(0), "{binary} check ({format}) on the secured stack:\n{out}");
            outputs.push((format!("{binary} check ({format})"), out));
        }
        let mut source = Service::start("cdc-source", &p.source.tag, &source_config, "toml", &[], &env);
        let sink = Service::start("jdbc-sink", &p.mirror, &sink_config, "toml", &[], &env);
        source.wait_for_log("streaming the binlog", Duration::from_secs(90));
        p.exec(DML).await;
        running.push((p, source, sink, source_port, sink_port, format));
    }
    for (p, source, sink, source_port, sink_port, format) in &running {
        p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], Duration::from_secs(90), &[source, sink]).await;
        let rows = p.mirror_rows(&format!("SELECT name FROM `{}` ORDER BY user_id", p.topic("users"))).await;
        assert_eq!(rows, vec![vec![Some("one".to_string())], vec![Some("TWO".to_string())]], "{format}");
        for (port, name) in [(*source_port, &p.source.name), (*sink_port, &p.sink_name)] {
            for path in ["/status".to_string(), "/metrics".to_string(), format!("/connectors/{name}/status"), format!("/connectors/{name}/config")] {
                outputs.push((format!("GET {path} ({format})"), http_get(port, &path).await));
            }
        }
    }
    assert_eq!(proxy.refused(), 0, "the registry proxy refused the right credentials");
    for (_, mut source, mut sink, _, _, format) in running {
        source.terminate(Duration::from_secs(30));
        sink.terminate(Duration::from_secs(30));
        outputs.push((format!("cdc-source log ({format})"), source.log_text()));
        outputs.push((format!("jdbc-sink log ({format})"), sink.log_text()));
    }
    let secrets_shown = [kafka.password.as_str(), registry_password.as_str(), stack.source_password.as_str()];
    for (what, text) in &outputs {
        assert_no_secret(what, text, &secrets_shown);
    }
    let _ = std::fs::remove_file(&secrets);
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_and_security_mistakes_fail_at_start() {
    let kafka = PrivateKafka::start_secure();
    let stack = kafka.on(Stack::from_env());
    let p = PipelineSetup::on(stack.clone(), "tlsk_mtls").await;
    // The sink's client certificate as one PEM file with the key, a Java "PEM key store".
    let keystore = kafka.tls_dir().join("client-keystore.pem");
    let key_and_cert = [std::fs::read(kafka.tls_dir().join("client.key")).expect("client.key"), std::fs::read(kafka.tls_dir().join("client.pem")).expect("client.pem")].concat();
    std::fs::write(&keystore, key_and_cert).expect("client key store");
    let ca = kafka.tls_file("ca.pem");
    // Each start its own replica server id: a stopped source's binlog connection may linger.
    let replica = std::sync::atomic::AtomicU32::new(0);
    let source_config = |extra_kafka: &str, port: u16| {
        let id = p.source.server_id + 100_000 * replica.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config = p.source.config("json", "\"delete.enabled\" = true\n\"http.failed.linger.ms\" = 0\n");
        let config = config.replace(&format!("\"server.id\" = {}\n", p.source.server_id), &format!("\"server.id\" = {id}\n"));
        on_listener(&format!("{config}{extra_kafka}"), &stack, port)
    };
    let mtls = format!(
        "\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{ca}\"\n\
         \"ssl.certificate.location\" = \"{}\"\n\"ssl.key.location\" = \"{}\"\n",
        kafka.tls_file("client.pem"),
        kafka.tls_file("client.key")
    );
    let source = Service::start("cdc-source", &p.source.tag, &source_config(&mtls, kafka.ssl_port), "toml", &[], &[]);
    let sink_config = |extra_kafka: &str, port: u16| {
        on_listener(
            &format!("{}{extra_kafka}", p.sink_config(free_port(), "\"delete.enabled\" = true\n\"pk.mode\" = \"record_key\"\n\"http.failed.linger.ms\" = 0\n")),
            &stack,
            port,
        )
    };
    let sink_mtls = format!(
        "\"security.protocol\" = \"SSL\"\n\"ssl.truststore.type\" = \"PEM\"\n\"ssl.truststore.location\" = \"{ca}\"\n\
         \"ssl.keystore.type\" = \"PEM\"\n\"ssl.keystore.location\" = \"{}\"\n",
        keystore.display()
    );
    let sink = Service::start("jdbc-sink", &p.mirror, &sink_config(&sink_mtls, kafka.ssl_port), "toml", &[], &[]);
    p.exec(DML).await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], Duration::from_secs(90), &[&source, &sink]).await;
    drop(sink);
    drop(source);

    let wrong = "WrongKafkaPw0815";
    let scram = |password: &str| {
        format!(
            "\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\"ssl.ca.location\" = \"{ca}\"\n\
             \"sasl.jaas.config\" = 'org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{password}\";'\n",
            PrivateKafka::USER
        )
    };
    let tls_only = format!("\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{ca}\"\n");
    let other_ca = format!("\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{}\"\n", kafka.tls_file("other-ca.pem"));
    let cases: Vec<(&str, &str, String, Vec<&str>)> = vec![
        ("cdc-source", "wrong-password", source_config(&scram(wrong), kafka.sasl_ssl_port), vec!["refused the credentials", "kafka.sasl.password"]),
        ("jdbc-sink", "wrong-password", sink_config(&scram(wrong), kafka.sasl_ssl_port), vec!["refused the credentials", "kafka.sasl.password"]),
        ("cdc-source", "plaintext-to-tls", source_config("", kafka.ssl_port), vec!["kafka.security.protocol=PLAINTEXT"]),
        ("jdbc-sink", "plaintext-to-tls", sink_config("", kafka.sasl_ssl_port), vec!["kafka.security.protocol=PLAINTEXT"]),
        ("cdc-source", "wrong-ca", source_config(&other_ca, kafka.sasl_ssl_port), vec!["TLS with Kafka", "kafka.ssl.ca.location"]),
        ("cdc-source", "no-client-cert", source_config(&tls_only, kafka.ssl_port), vec!["TLS with Kafka", "kafka.ssl.certificate.location"]),
        (
            "cdc-source",
            "java-truststore",
            source_config("\"security.protocol\" = \"SSL\"\n\"ssl.truststore.location\" = \"/etc/kafka/truststore.jks\"\n", kafka.ssl_port),
            vec!["kafka.ssl.truststore.location", "kafka.ssl.ca.location"],
        ),
        ("jdbc-sink", "no-mechanism", sink_config("\"security.protocol\" = \"SASL_SSL\"\n", kafka.sasl_ssl_port), vec!["kafka.security.protocol", "kafka.sasl.mechanism"]),
    ];
    let outputs: Vec<(String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(binary, tag, config, wanted)| {
                let tag = format!("{}-{tag}", p.source.tag);
                scope.spawn(move || (format!("{binary} {tag}"), fails_at_start(binary, &tag, config, wanted)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("case thread")).collect()
    });
    for (what, text) in &outputs {
        assert_no_secret(what, text, &[wrong, kafka.password.as_str()]);
    }
}
