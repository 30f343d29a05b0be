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

/// A private Kafka started by `stack/up kafka` with its own data folder and ports, stopped by
/// `stack/down` when dropped. [`PrivateKafka::start_secure`]: one node with, beside PLAINTEXT on
/// `port` (for the tests' own readers), SASL_SSL on `sasl_ssl_port` (SCRAM-SHA-512/256 and PLAIN,
/// user [`PrivateKafka::USER`]) and SSL with a required client certificate on `ssl_port`.
/// [`PrivateKafka::start_cluster`]: three nodes (`stack/up --brokers 3`), replication factor 3.
#[derive(Debug)]
pub struct PrivateKafka {
    pub home: PathBuf,
    /// Node 1's PLAINTEXT port; node N's is `port + (N-1) * PORT_STEP`.
    pub port: u16,
    pub nodes: u16,
    pub sasl_ssl_port: u16,
    pub ssl_port: u16,
    /// The SCRAM/PLAIN password of [`PrivateKafka::USER`], unique per server.
    pub password: String,
    controller_port: u16,
    secure: bool,
}

/// Distance between the ports of two nodes of a private cluster.
const PORT_STEP: u16 = 10;

/// A base port whose `base + k * PORT_STEP` and `+1` (k < nodes) are all free.
fn free_port_run(nodes: u16) -> u16 {
    let seed = std::process::id() as u16 ^ (crate::next_counter() as u16).wrapping_mul(7919);
    for attempt in 0..200u16 {
        let base = 30_000 + (seed.wrapping_add(attempt.wrapping_mul(331)) % 3000) * 10;
        let free = (0..nodes).all(|k| {
            [0, 1].iter().all(|d| std::net::TcpListener::bind(("127.0.0.1", base + k * PORT_STEP + d)).is_ok())
        });
        if free {
            return base;
        }
    }
    panic!("no run of free ports for a private Kafka cluster");
}

impl PrivateKafka {
    pub const USER: &'static str = "cdc";

    /// One secured node (module doc).
    pub fn start_secure() -> PrivateKafka {
        Self::start(1, true)
    }

    /// One plain node.
    pub fn start_single() -> PrivateKafka {
        Self::start(1, false)
    }

    /// Three plain nodes, replication factor 3 and `min.insync.replicas=2` for every topic.
    pub fn start_cluster() -> PrivateKafka {
        Self::start(3, false)
    }

    fn start(nodes: u16, secure: bool) -> PrivateKafka {
        let port = free_port_run(nodes);
        let home = std::env::temp_dir().join(format!("cdc-tests-kafka-{port}"));
        let _ = std::fs::remove_dir_all(&home);
        let this = PrivateKafka {
            home,
            port,
            nodes,
            sasl_ssl_port: if secure { crate::sink::free_port() } else { 0 },
            ssl_port: if secure { crate::sink::free_port() } else { 0 },
            password: format!("KafkaPw{}x{}", std::process::id(), crate::next_counter()),
            controller_port: port + 1,
            secure,
        };
        this.up();
        this
    }

    /// `stack/up kafka` for this cluster: starts the nodes that do not run (all at first).
    pub fn up(&self) {
        let out = self.script("up").arg("kafka").output().expect("run stack/up");
        assert!(out.status.success(), "stack/up kafka failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }

    fn script(&self, name: &str) -> Command {
        let mut cmd = Command::new(stack_script(name));
        cmd.env("CDC_STACK_HOME", &self.home)
            .env("CDC_KAFKA_PORT", self.port.to_string())
            .env("CDC_KAFKA_CONTROLLER_PORT", self.controller_port.to_string())
            .env("CDC_KAFKA_PORT_STEP", PORT_STEP.to_string())
            .env("CDC_KAFKA_NODES", self.nodes.to_string())
            .env("CDC_KAFKA_SASL_SSL_PORT", self.sasl_ssl_port.to_string())
            .env("CDC_KAFKA_SSL_PORT", self.ssl_port.to_string())
            .env("CDC_KAFKA_SASL_PASSWORD", &self.password)
            .env("CDC_STACK_SECURE", if self.secure { "1" } else { "0" })
            .env("CDC_KAFKA_HEAP", "512m");
        cmd
    }

    /// Every node's PLAINTEXT address, comma-separated.
    pub fn bootstrap(&self) -> String {
        (0..self.nodes).map(|k| format!("127.0.0.1:{}", self.port + k * PORT_STEP)).collect::<Vec<_>>().join(",")
    }

    /// The PID of node `id` (1-based), if it runs.
    pub fn pid(&self, id: u16) -> Option<u32> {
        let name = if id == 1 { "kafka.pid".to_string() } else { format!("kafka-{id}.pid") };
        std::fs::read_to_string(self.home.join("run").join(name)).ok()?.trim().parse().ok()
    }

    /// SIGKILL to node `id`.
    pub fn kill(&self, id: u16) {
        let pid = self.pid(id).unwrap_or_else(|| panic!("Kafka node {id} has no PID file"));
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }

    /// SIGSTOP to node `id`: it keeps its connections open and answers nothing, as a broker
    /// stalled by the machine would, until [`PrivateKafka::resume`].
    pub fn pause(&self, id: u16) {
        let pid = self.pid(id).unwrap_or_else(|| panic!("Kafka node {id} has no PID file"));
        let _ = Command::new("kill").args(["-STOP", &pid.to_string()]).status();
    }

    /// SIGCONT to node `id` (after [`PrivateKafka::pause`]).
    pub fn resume(&self, id: u16) {
        if let Some(pid) = self.pid(id) {
            let _ = Command::new("kill").args(["-CONT", &pid.to_string()]).status();
        }
    }

    /// The node id of the active KRaft controller (the metadata quorum's leader).
    pub fn active_controller(&self) -> u16 {
        let cache = std::env::var("CDC_STACK_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/cdc-pipeline"));
        let libs = std::fs::read_dir(&cache)
            .expect("stack cache")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("kafka-")) && p.join("libs").is_dir())
            .expect("Kafka in the stack cache (stack/fetch)");
        let out = Command::new("java")
            .arg("-cp")
            .arg(format!("{}/*", libs.join("libs").display()))
            .args(["org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server", &self.bootstrap(), "describe", "--status"])
            .output()
            .expect("run MetadataQuorumCommand");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("LeaderId:").map(|v| v.trim().parse().expect("leader id")))
            .unwrap_or_else(|| panic!("no LeaderId in:\n{text}\n{}", String::from_utf8_lossy(&out.stderr)))
    }

    /// The CA and certificates (`ca.pem`, `client.pem`, `client.key`, `other-ca.pem`, …).
    pub fn tls_dir(&self) -> PathBuf {
        self.home.join("tls")
    }

    /// A file of [`PrivateKafka::tls_dir`] as a string.
    pub fn tls_file(&self, name: &str) -> String {
        self.tls_dir().join(name).display().to_string()
    }

    /// `stack` with Kafka pointing at this cluster's PLAINTEXT listeners.
    pub fn on(&self, mut stack: Stack) -> Stack {
        stack.kafka_bootstrap = self.bootstrap();
        stack
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        // A paused node would not act on stack/down's SIGTERM.
        for id in 1..=self.nodes {
            self.resume(id);
        }
        let _ = self.script("down").output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
