//! A loopback TCP proxy with network faults, put between a service and MariaDB in the network
//! tests. It listens on a free loopback port and is switched between three modes:
//!
//! - [`Mode::Forward`]: each new connection is connected to the upstream and bytes are copied both
//!   ways.
//! - [`Mode::Cut`]: every connection is closed, and new ones are closed as soon as accepted (the
//!   client sees the connection reset or ended during the handshake): a path that is down.
//! - [`Mode::HalfOpen`]: what a firewall, NAT or load balancer that dropped its state does. New
//!   connections are accepted and never answered; existing ones are frozen: no byte is copied any
//!   more in either direction, and nothing is closed. Frozen connections stay frozen after the
//!   path heals (the state they lived in is gone), until a cut or the proxy's end closes them;
//!   only new connections are forwarded again.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with connections, see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    Cut,
    HalfOpen,
}

#[derive(Debug)]
pub struct TcpProxy {
    /// The loopback port to connect to instead of the upstream's.
    pub port: u16,
    mode: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let mode = Arc::new(watch::Sender::new(Mode::Forward));
        let upstream = upstream.to_string();
        let modes = Arc::clone(&mode);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (rx, upstream) = (modes.subscribe(), upstream.clone());
                tokio::spawn(serve(client, upstream, rx));
            }
        });
        TcpProxy { port, mode, task }
    }

    /// Switches the mode (a no-op when it is the current one).
    pub fn set(&self, mode: Mode) {
        self.mode.send_if_modified(|m| std::mem::replace(m, mode) != mode);
    }

    /// Replaces `host:port` (the upstream's address as written in a config) by the proxy's.
    pub fn rewrite(&self, text: &str, upstream_host: &str, upstream_port: u16) -> String {
        let from = format!("{upstream_host}:{upstream_port}/");
        assert!(text.contains(&from), "{from} is not in the config:\n{text}");
        text.replace(&from, &format!("127.0.0.1:{}/", self.port))
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Frozen and forwarding connections end with the mode channel.
        self.set(Mode::Cut);
    }
}

async fn serve(mut client: TcpStream, upstream: String, mut rx: watch::Receiver<Mode>) {
    let mode = *rx.borrow_and_update();
    match mode {
        Mode::Cut => return,
        Mode::HalfOpen => return frozen(rx, client, None).await,
        Mode::Forward => {}
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        mode = next_mode(&mut rx) => {
            if mode == Some(Mode::HalfOpen) {
                frozen(rx, client, Some(server)).await;
            }
        }
    }
}

/// The next mode other than forwarding; `None` when the proxy is gone.
async fn next_mode(rx: &mut watch::Receiver<Mode>) -> Option<Mode> {
    loop {
        rx.changed().await.ok()?;
        let mode = *rx.borrow_and_update();
        if mode != Mode::Forward {
            return Some(mode);
        }
    }
}

/// Holds the sockets open without reading or writing until a cut or the proxy's end.
async fn frozen(mut rx: watch::Receiver<Mode>, client: TcpStream, server: Option<TcpStream>) {
    while let Some(mode) = next_mode(&mut rx).await {
        if mode == Mode::Cut {
            break;
        }
    }
    drop((client, server));
}
