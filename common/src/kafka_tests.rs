use std::collections::BTreeMap;

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Lifts and normalizes a flat config as the loader does; the librdkafka map or the error.
fn settings(pairs: &[(&str, &str)]) -> Result<Normalized, ConfigError> {
    let mut flat = map(pairs);
    let origin = lift_connect_keys(&mut flat)?;
    let kafka = flat.into_iter().filter_map(|(k, v)| k.strip_prefix("kafka.").map(|p| (p.to_string(), v))).collect();
    normalize(kafka, &origin)
}

fn error_of(pairs: &[(&str, &str)]) -> String {
    match settings(pairs) {
        Ok(n) => panic!("expected an error, got {:?}", n.kafka),
        Err(e) => e.to_string(),
    }
}

#[test]
fn scram_jaas_config_becomes_username_and_password() {
    let n = settings(&[
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.jaas.config", r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p\"w;1";"#),
        ("kafka.bootstrap.servers", "127.0.0.1:9093"),
    ])
    .unwrap();
    assert_eq!(
        n.kafka,
        map(&[
            ("bootstrap.servers", "127.0.0.1:9093"),
            ("reconnect.backoff.max.ms", "1000"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.password", "p\"w;1"),
            ("sasl.username", "alice"),
            ("security.protocol", "SASL_SSL"),
        ])
    );
}

#[test]
fn plain_login_module_implies_the_mechanism() {
    let n = settings(&[
        ("kafka.security.protocol", "SASL_PLAINTEXT"),
        ("kafka.sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=bob password=secret;"),
    ])
    .unwrap();
    assert_eq!(n.kafka["sasl.mechanism"], "PLAIN");
    assert_eq!(n.kafka["sasl.username"], "bob");
    assert_eq!(n.kafka["sasl.password"], "secret");
}

#[test]
fn connect_prefixes_are_one_identity() {
    let n = settings(&[("consumer.override.security.protocol", "SSL"), ("producer.ssl.ca.location", "/dev/null")]).unwrap();
    assert_eq!(n.kafka["security.protocol"], "SSL");
    assert_eq!(n.kafka["ssl.ca.location"], "/dev/null");
    let e = error_of(&[("producer.security.protocol", "SSL"), ("consumer.security.protocol", "SASL_SSL")]);
    assert!(e.contains("security.protocol") && e.contains("set it once"), "{e}");
}

#[test]
fn pem_trust_and_key_stores_become_librdkafka_locations() {
    let n = settings(&[
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", "/dev/null"),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", "/dev/null"),
        ("ssl.endpoint.identification.algorithm", ""),
        ("ssl.enabled.protocols", "TLSv1.2,TLSv1.3"),
    ])
    .unwrap();
    assert_eq!(n.kafka["ssl.ca.location"], "/dev/null");
    assert_eq!(n.kafka["ssl.certificate.location"], "/dev/null");
    assert_eq!(n.kafka["ssl.key.location"], "/dev/null");
    assert_eq!(n.kafka["ssl.endpoint.identification.algorithm"], "none");
    assert!(!n.kafka.keys().any(|k| k.contains("store") || k == "ssl.enabled.protocols"), "{:?}", n.kafka);
    assert_eq!(n.ignored, vec!["ssl.enabled.protocols".to_string()]);
}

#[test]
fn java_stores_are_refused_with_the_pem_key_to_use() {
    let e = error_of(&[("ssl.truststore.location", "/etc/kafka/truststore.jks"), ("ssl.truststore.password", "changeit")]);
    assert!(e.contains("`ssl.truststore.location`") && e.contains("kafka.ssl.ca.location"), "{e}");
    assert!(!e.contains("changeit"), "{e}");
    let dir = std::env::temp_dir().join(format!("cdc-kafka-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jks = dir.join("ks.jks");
    std::fs::write(&jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
    let e = error_of(&[("kafka.ssl.keystore.location", jks.to_str().unwrap())]);
    assert!(e.contains("Java key store") && e.contains("PKCS12") && e.contains("kafka.ssl.certificate.location"), "{e}");
    let p12 = dir.join("ks.p12");
    std::fs::write(&p12, [0x30, 0x82, 0x0A, 0x01]).unwrap();
    let n = settings(&[("kafka.ssl.keystore.location", p12.to_str().unwrap()), ("kafka.ssl.keystore.password", "pw")]).unwrap();
    assert_eq!(n.kafka["ssl.keystore.password"], "pw");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sasl_mistakes_name_the_key() {
    /// A flat config and the words its error must contain.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (&[("security.protocol", "SASL_SSL")], &["`security.protocol`", "kafka.sasl.mechanism"]),
        (&[("security.protocol", "TLS")], &["`security.protocol`", "SASL_SSL"]),
        (&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-512")], &["`sasl.mechanism`", "credentials"]),
        (&[("sasl.mechanism", "GSSAPI")], &["Kerberos"]),
        (
            &[("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"a\" password=\"b\";")],
            &["sasl.mechanism`", "SCRAM-SHA-512"],
        ),
        (
            &[
                ("sasl.mechanism", "PLAIN"),
                ("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"a\" password=\"b\";"),
            ],
            &["is PLAIN", "ScramLoginModule"],
        ),
        (&[("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"a\" password=\"b\"")], &["`sasl.jaas.config`", "`;`"]),
        (
            &[("sasl.mechanism", "SCRAM-SHA-256"), ("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"a\" password=\"b\" tokenauth=true;")],
            &["tokenauth", "not understood"],
        ),
        (&[("sasl.jaas.config", "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;")], &["Kerberos"]),
        (&[("sasl.login.callback.handler.class", "com.example.Handler")], &["Java class"]),
        (&[("kafka.ssl.ca.location", "/nonexistent/ca.pem")], &["`kafka.ssl.ca.location`", "cannot read /nonexistent/ca.pem"]),
    ];
    for (pairs, wanted) in cases {
        let e = error_of(pairs);
        for w in *wanted {
            assert!(e.contains(w), "{pairs:?}: `{w}` missing in: {e}");
        }
        assert!(!e.contains("\"b\""), "a password in an error: {e}");
    }
}

#[test]
fn oauthbearer_options_map_to_librdkafka() {
    let n = settings(&[
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "OAUTHBEARER"),
        ("sasl.oauthbearer.token.endpoint.url", "https://127.0.0.1/token"),
        ("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"c\" clientSecret=\"s\" scope=\"kafka\";"),
    ])
    .unwrap();
    assert_eq!(n.kafka["sasl.oauthbearer.client.id"], "c");
    assert_eq!(n.kafka["sasl.oauthbearer.client.secret"], "s");
    assert_eq!(n.kafka["sasl.oauthbearer.scope"], "kafka");
    assert_eq!(n.kafka["sasl.oauthbearer.method"], "oidc");
}

#[test]
fn explain_names_the_real_cause() {
    let kafka = map(&[("security.protocol", "PLAINTEXT")]);
    let auth = explain("h:1", &kafka, &"timed out", Some((RDKafkaErrorCode::Authentication, "SASL authentication error".into())));
    assert!(auth.contains("refused the credentials") && auth.contains("kafka.sasl.password"), "{auth}");
    let tls = explain("h:1", &kafka, &"timed out", Some((RDKafkaErrorCode::SSL, "certificate verify failed".into())));
    assert!(tls.contains("TLS") && tls.contains("kafka.ssl.ca.location"), "{tls}");
    let proto = explain(
        "h:1",
        &kafka,
        &"timed out",
        Some((RDKafkaErrorCode::BrokerTransportFailure, "Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration".into())),
    );
    assert!(proto.contains("kafka.security.protocol=PLAINTEXT"), "{proto}");
    let down = explain("h:1", &kafka, &"timed out", None);
    assert!(down.contains("does not answer") && down.contains("kafka.bootstrap.servers"), "{down}");
}
