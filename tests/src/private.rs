//! A private MariaDB for tests that must restart the server or change its global settings, which
//! would disturb the shared stack. It is started by the same `stack/up mariadb` as everything
//! else, with its own data folder and port, and stopped by `stack/down` when dropped.
//! [`PrivateMariadb::start_secure`] starts it with `--secure`: TLS only, certificates in
//! [`PrivateMariadb::tls_dir`]. [`PrivateKafka::start_secure`] starts a private Kafka the same way
//! (`stack/up --secure kafka`) with its SASL_SSL and client-certificate SSL listeners.

use std::path::PathBuf;
use std::process::Command;

use crate::Stack;

#[derive(Debug)]
pub struct PrivateMariadb {
    pub home: PathBuf,
    pub port: u16,
    /// Started with `stack/up --secure` (TLS only).
    pub secure: bool,
}

fn stack_script(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../stack")).join(name)
}

impl PrivateMariadb {
    /// Starts a fresh MariaDB on `port` (pick one per test) with the stack's flags and `sql/`.
    pub fn start(port: u16) -> PrivateMariadb {
        let home = std::env::temp_dir().join(format!("cdc-tests-mariadb-{port}"));
        let _ = std::fs::remove_dir_all(&home);
        let this = PrivateMariadb { home, port, secure: false };
        this.run("up");
        this
    }

    /// Like [`PrivateMariadb::start`], secured (`stack/up --secure mariadb`):
    /// `require_secure_transport=ON`, `cdc_source` / `cdc_sink` created `REQUIRE SSL`, a server
    /// certificate for `localhost` only, signed by `tls_dir()/ca.pem`.
    pub fn start_secure(port: u16) -> PrivateMariadb {
        let home = std::env::temp_dir().join(format!("cdc-tests-mariadb-{port}"));
        let _ = std::fs::remove_dir_all(&home);
        let this = PrivateMariadb { home, port, secure: true };
        this.run("up");
        this
    }

    /// Where the secured server's CA and certificates are (`ca.pem`, `client.pem`, `client.key`,
    /// `other-ca.pem`, …; see stack/lib.sh `ensure_tls_certs`).
    pub fn tls_dir(&self) -> PathBuf {
        self.home.join("tls")
    }

    fn run(&self, script: &str) {
        let out = Command::new(stack_script(script))
            .arg("mariadb")
            .env("CDC_STACK_HOME", &self.home)
            .env("CDC_MARIADB_PORT", self.port.to_string())
            .env("CDC_STACK_SECURE", if self.secure { "1" } else { "0" })
            .output()
            .expect("run stack script");
        assert!(
            out.status.success() || script == "down",
            "stack/{script} for the private MariaDB on port {} failed:\n{}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (data stays) and starts it again.
    pub fn restart(&self) {
        self.stop();
        self.run("up");
    }

    /// Stops the server; `start_again` brings it back.
    pub fn stop(&self) {
        let out = Command::new(stack_script("down"))
            .env("CDC_STACK_HOME", &self.home)
            .output()
            .expect("run stack/down");
        assert!(out.status.success(), "stack/down: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn start_again(&self) {
        self.run("up");
    }

    /// The shared stack's addresses, with MariaDB pointing at this server.
    pub fn stack(&self) -> Stack {
        let mut s = Stack::from_env();
        s.mariadb_port = self.port;
        if self.secure {
            // The server's certificate names `localhost` only.
            s.mariadb_host = "localhost".into();
            s.mariadb_ca = Some(self.tls_dir().join("ca.pem"));
        }
        s
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        let _ = Command::new(stack_script("down")).env("CDC_STACK_HOME", &self.home).output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// A private Kafka started by `stack/up --secure kafka`: PLAINTEXT on `port` (for the tests' own
/// readers), SASL_SSL on `sasl_ssl_port` (SCRAM-SHA-512/256 and PLAIN, user [`PrivateKafka::USER`]),
/// SSL with a required client certificate on `ssl_port`; stopped by `stack/down` when dropped.
#[derive(Debug)]
pub struct PrivateKafka {
    pub home: PathBuf,
    pub port: u16,
    pub sasl_ssl_port: u16,
    pub ssl_port: u16,
    /// The SCRAM/PLAIN password of [`PrivateKafka::USER`], unique per server.
    pub password: String,
}

impl PrivateKafka {
    pub const USER: &'static str = "cdc";

    pub fn start_secure() -> PrivateKafka {
        let port = crate::sink::free_port();
        let home = std::env::temp_dir().join(format!("cdc-tests-kafka-{port}"));
        let _ = std::fs::remove_dir_all(&home);
        let this = PrivateKafka {
            home,
            port,
            sasl_ssl_port: crate::sink::free_port(),
            ssl_port: crate::sink::free_port(),
            password: format!("KafkaPw{}x{}", std::process::id(), crate::next_counter()),
        };
        let out = Command::new(stack_script("up"))
            .args(["--secure", "kafka"])
            .env("CDC_STACK_HOME", &this.home)
            .env("CDC_KAFKA_PORT", port.to_string())
            .env("CDC_KAFKA_CONTROLLER_PORT", crate::sink::free_port().to_string())
            .env("CDC_KAFKA_SASL_SSL_PORT", this.sasl_ssl_port.to_string())
            .env("CDC_KAFKA_SSL_PORT", this.ssl_port.to_string())
            .env("CDC_KAFKA_SASL_PASSWORD", &this.password)
            .env("CDC_KAFKA_HEAP", "512m")
            .output()
            .expect("run stack/up");
        assert!(out.status.success(), "stack/up --secure kafka failed:\n{}", String::from_utf8_lossy(&out.stderr));
        this
    }

    /// The CA and certificates (`ca.pem`, `client.pem`, `client.key`, `other-ca.pem`, …).
    pub fn tls_dir(&self) -> PathBuf {
        self.home.join("tls")
    }

    /// A file of [`PrivateKafka::tls_dir`] as a string.
    pub fn tls_file(&self, name: &str) -> String {
        self.tls_dir().join(name).display().to_string()
    }

    /// `stack` with Kafka pointing at this broker's PLAINTEXT listener.
    pub fn on(&self, mut stack: Stack) -> Stack {
        stack.kafka_bootstrap = format!("127.0.0.1:{}", self.port);
        stack
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        let _ = Command::new(stack_script("down")).env("CDC_STACK_HOME", &self.home).output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
