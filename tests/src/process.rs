//! Running the service binaries (`cdc-source`, `jdbc-sink`) as real processes in tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The path of a workspace binary, next to the running test executable's `deps/` folder.
/// `stack/test` builds every binary before it runs the tests.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target profile folder");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} does not exist; build the workspace first (`cargo build --workspace`, as stack/test does)",
        path.display()
    );
    path
}

/// A running service process; killed when dropped.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    child: Child,
    pub log: PathBuf,
    pub config: PathBuf,
    dir: PathBuf,
}

impl Service {
    /// Starts `binary` with `config_text` written to a file (extension `ext`, e.g. `toml` or
    /// `json`), extra arguments, and extra environment. Output goes to a log file in a folder of
    /// this instance's own under the system temp folder, removed when the `Service` is dropped —
    /// unless the test is failing, then it stays and its path is printed.
    pub fn start(binary_name: &str, tag: &str, config_text: &str, ext: &str, args: &[&str], env: &[(&str, &str)]) -> Service {
        static INSTANCE: AtomicU32 = AtomicU32::new(0);
        let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cdc-tests-{tag}-{binary_name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join(format!("{binary_name}.{ext}"));
        std::fs::File::create(&config)
            .and_then(|mut f| f.write_all(config_text.as_bytes()))
            .expect("write config");
        let log = dir.join(format!("{binary_name}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(binary(binary_name));
        cmd.args(args).arg("--config").arg(&config).stdout(out).stderr(err).stdin(Stdio::null());
        cmd.env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn service");
        Service { name: binary_name.to_string(), child, log, config, dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The service's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `text`; panics with the log after `timeout`.
    pub fn wait_for_log(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log_text().contains(text) {
            assert!(self.exited().is_none(), "{} exited before logging {text:?}:\n{}", self.name, self.log_text());
            assert!(Instant::now() < deadline, "{} did not log {text:?} within {timeout:?}:\n{}", self.name, self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process has exited, with its exit code.
    pub fn exited(&mut self) -> Option<i32> {
        self.child.try_wait().ok().flatten().map(|s| s.code().unwrap_or(-1))
    }

    /// Sends SIGTERM and waits up to `within` for the exit; returns the exit code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        self.wait(within)
    }

    /// Waits up to `within` for the process to exit.
    pub fn wait(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(code) = self.exited() {
                return Some(code);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill();
        }
        if std::thread::panicking() {
            eprintln!("{} log kept for the failing test: {}", self.name, self.log.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `binary` with `config` (TOML), `args` and `env` until it exits (at most a minute); its
/// exit code (`None` when it had to be killed) and everything it printed.
pub fn run_to_exit(binary: &str, tag: &str, config: &str, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut service = Service::start(binary, tag, config, "toml", args, env);
    let code = service.wait(Duration::from_secs(60));
    (code, service.log_text())
}

/// Starts `binary` with `config` (TOML) and expects it to exit non-zero within a minute with
/// every one of `wanted` in its output; returns the output.
pub fn fails_at_start(binary: &str, tag: &str, config: &str, wanted: &[&str]) -> String {
    let (code, log) = run_to_exit(binary, tag, config, &[], &[]);
    assert!(matches!(code, Some(c) if c != 0), "{binary} ({tag}) should exit non-zero at start, got {code:?}:\n{log}");
    for w in wanted {
        assert!(log.contains(w), "{binary} ({tag}): the error should mention `{w}`:\n{log}");
    }
    log
}

/// Panics when `text` (an output described by `what`) contains any of `secrets`.
pub fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows the secret `{s}`:\n{text}");
    }
}

/// The `http=` address (host:port) a service logged at start (with `http.listen` port 0).
pub fn http_addr(log: &str) -> String {
    let at = log.find("http=").expect("http address in the log") + 5;
    log[at..].split_whitespace().next().expect("address").trim_end_matches(|c: char| !c.is_ascii_digit()).to_string()
}

/// The body of `GET http://127.0.0.1:<port><path>`.
pub async fn http_get(port: u16, path: &str) -> String {
    match reqwest::get(format!("http://127.0.0.1:{port}{path}")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => panic!("GET {path} on port {port}: {e}"),
    }
}
