//! An ambiguous commit: the sink's COMMIT reaches MariaDB and takes effect, but its answer never
//! comes back (the connection is dropped right after the COMMIT passed, by a loopback proxy in
//! this test that watches the sink's packets). The sink must say that the outcome is unknown,
//! find out from the offsets table on the retry that the batch is in the mirror, and neither
//! apply it twice nor blame "another consumer" (there is none).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cdc_tests::sink::{producer, send, SinkCase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `COM_QUERY "COMMIT"` after the 3-byte packet length 7 and a sequence byte.
fn has_commit(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w[..3] == [7, 0, 0] && &w[4..] == b"\x03COMMIT")
}

/// Forwards to `upstream`; on the first COMMIT a client sends, passes it on, swallows the
/// answer and closes the connection half a second later (the server has committed by then).
async fn proxy(upstream: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let armed = Arc::new(AtomicBool::new(true));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (upstream, armed) = (upstream.clone(), Arc::clone(&armed));
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else { return };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let swallow = Arc::new(AtomicBool::new(false));
                let answers = {
                    let swallow = Arc::clone(&swallow);
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok(n @ 1..) = server_rx.read(&mut buf).await {
                            if swallow.load(Ordering::Relaxed) {
                                continue;
                            }
                            if client_tx.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    })
                };
                let mut buf = vec![0u8; 65536];
                while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
                    let cut = has_commit(&buf[..n]) && armed.swap(false, Ordering::Relaxed);
                    if cut {
                        swallow.store(true, Ordering::Relaxed);
                    }
                    if server_tx.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if cut {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        break;
                    }
                }
                answers.abort();
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_is_resolved_from_the_offsets_table() {
    let case = SinkCase::new("sink_ambiguous", 1).await;
    let p = producer(&case.stack.kafka_bootstrap);
    for id in 0..100 {
        let value = format!(r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}}],"optional":false}},"payload":{{"id":{id}}}}}"#);
        send(&p, &case.topic, Some(0), None, Some(value.as_bytes())).await;
    }
    let port = proxy(format!("{}:{}", case.stack.mariadb_host, case.stack.mariadb_port)).await;
    let config = case
        .toml("\"pk.mode\" = \"none\"\n\"insert.mode\" = \"insert\"\n\"batch.size\" = 30")
        .replace(&format!("{}:{}/", case.stack.mariadb_host, case.stack.mariadb_port), &format!("127.0.0.1:{port}/"));
    let mut sink = case.start_sink(&config, "toml", &[]);
    case.wait_rows(&format!("SELECT COUNT(*), COUNT(DISTINCT id) FROM `{}`", case.topic), &[&[Some("100"), Some("100")]], Duration::from_secs(60), &sink)
        .await;
    assert_eq!(case.rows("SELECT next_offset FROM cdc_sink_offsets").await, vec![vec![Some("100".to_string())]]);
    let log = sink.log_text();
    println!("{log}");
    assert!(log.contains("whether the batch took effect is unknown"), "the retry should say the outcome is unknown:\n{log}");
    assert!(log.contains("ambiguous commit resolved") && log.contains("took effect"), "the retry should resolve it:\n{log}");
    assert!(!log.contains("another consumer"), "there is no other consumer:\n{log}");
    assert_eq!(sink.terminate(Duration::from_secs(20)), Some(0), "{}", sink.log_text());
}
