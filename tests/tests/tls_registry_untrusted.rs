//! A registry whose certificate is signed by a CA the client does not trust (the test's TLS
//! proxy, cdc_tests::tls_proxy, in front of the stack's registry): the error names the failed
//! certificate verification and `schema.registry.ssl.ca.location`, not only "error sending
//! request" and the advice to check that the registry runs. Both for a client that trusts the
//! system's CAs and for one given another CA, and in `jdbc-sink check`.

use cdc_schema::{Registry, RegistryAccess};
use cdc_tests::process::run_to_exit;
use cdc_tests::sink::SinkCase;
use cdc_tests::tls_proxy::TlsProxy;

fn assert_names_the_ca(what: &str, text: &str, wanted: &str) {
    println!("{what}: {text}");
    assert!(
        text.contains("certificate verify failed") && text.contains(wanted) && !text.contains("registry runs"),
        "{what} should name the certificate and the CA key ({wanted}):\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_registry_ca_is_named_as_such() {
    let case = SinkCase::new("tls_untrusted", 1).await;
    let proxy = TlsProxy::start(&case.stack.registry_url, "reg_user", "reg_pw").await;
    let other = TlsProxy::start(&case.stack.registry_url, "reg_user", "reg_pw").await;
    let user_info = Some(("reg_user".to_string(), "reg_pw".to_string()));

    // The system's CAs only.
    let access = RegistryAccess { ca_pem: None, user_info: user_info.clone() };
    let registry = Registry::connect(&proxy.url, &access).expect("client");
    let error = registry.subjects().await.expect_err("the proxy's CA is not trusted");
    assert!(error.is_transient(), "{error}");
    assert_names_the_ca("system CAs", &error.to_string(), "set schema.registry.ssl.ca.location");

    // Another CA configured.
    let access = RegistryAccess { ca_pem: Some(std::fs::read(other.ca_pem()).expect("CA")), user_info };
    let registry = Registry::connect(&proxy.url, &access).expect("client");
    let error = registry.subjects().await.expect_err("another proxy's CA does not sign this one");
    assert_names_the_ca("another CA", &error.to_string(), "not signed by the CA in schema.registry.ssl.ca.location");

    // The right CA: it answers.
    let access = RegistryAccess { ca_pem: Some(std::fs::read(proxy.ca_pem()).expect("CA")), user_info: Some(("reg_user".into(), "reg_pw".into())) };
    Registry::connect(&proxy.url, &access).expect("client").subjects().await.expect("the right CA verifies");

    // What an operator sees: `jdbc-sink check` without the CA.
    let config = case.toml(&format!(
        "\"schema.registry.url\" = \"{}\"\n\"basic.auth.credentials.source\" = \"USER_INFO\"\n\"basic.auth.user.info\" = \"reg_user:reg_pw\"",
        proxy.url
    ));
    let (code, out) = run_to_exit("jdbc-sink", &case.database, &config, &["check"], &[]);
    assert!(matches!(code, Some(c) if c != 0), "check should fail, got {code:?}:\n{out}");
    assert_names_the_ca("jdbc-sink check", &out, "schema.registry.ssl.ca.location");
}
