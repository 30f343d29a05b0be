//! The flusher's connection to the mirror database: opened with the session settings and
//! bounded by `connect.timeout.ms`, pinged while idle so a stalled path shows as not ready.

use std::time::{Duration, Instant};

use cdc_common::Backoff;

use super::Flusher;
use crate::errors::{class, db_error, SinkError};
use crate::writer::StatementLimit;

impl Flusher {
    /// Takes the database connection out of `self` (opening one with the session settings, and
    /// reading its [`StatementLimit`], when there is none); give it back with
    /// `self.conn = Some(conn)` when it is still good.
    pub(crate) async fn take_conn(&mut self) -> Result<mysql_async::Conn, SinkError> {
        if let Some(conn) = self.conn.take() {
            return Ok(conn);
        }
        let mut setup = crate::writer::session_setup();
        // The server aborts a statement running longer than a whole batch may take, and ends a
        // connection silent for longer than this sink ever leaves it (it pings while idle): a
        // connection the sink gave up on as stalled (half-open) would otherwise keep its open
        // transaction's locks — the offsets rows among them — for hours.
        let (statement, idle) = server_timeouts(self.settings.statement_timeout, self.settings.ping_interval);
        setup.push(format!("SET SESSION max_statement_time = {statement:.3}, wait_timeout = {idle}"));
        let opts = self.settings.db_opts().init(setup);
        let url = &self.settings.url;
        let connect = async {
            let mut conn = mysql_async::Conn::new(opts).await.map_err(|e| match url.tls.hint(&e) {
                Some(fix) => SinkError::Definite(format!("connecting to {url} as the sink user: {e}; {fix}")),
                None => db_error(&format!("connecting to {url} as the sink user"), &e),
            })?;
            let limit = StatementLimit::read(&mut conn)
                .await
                .map_err(|e| db_error("reading max_allowed_packet", &e))?;
            Ok((conn, limit))
        };
        let what = format!("connecting to {url}");
        let (conn, limit) = bounded(self.settings.connect_timeout, "connect.timeout.ms", &what, connect).await?;
        self.statement_limit = limit;
        // Tables may have changed while disconnected.
        self.tables.forget();
        Ok(conn)
    }

    /// While no batch is being committed: once per `connection.ping.interval.ms` without an
    /// answer from the database, pings it (within `connect.timeout.ms`, reconnecting if the
    /// connection is gone), retrying with backoff until it answers. So a database or network
    /// path that stopped answering turns `/ready` 503 while the sink is idle, too.
    pub(crate) async fn check_idle_connection(&mut self) -> Result<(), SinkError> {
        if self.db_answered.elapsed() < self.settings.ping_interval {
            return Ok(());
        }
        let mut backoff = Backoff::new(self.settings.retry_backoff, Duration::from_secs(30));
        let limit = self.settings.connect_timeout;
        loop {
            let attempt = bounded(limit, "connect.timeout.ms", "pinging the mirror database", async {
                let mut conn = self.take_conn().await?;
                mysql_async::prelude::Queryable::ping(&mut conn).await.map_err(|e| db_error("pinging the mirror database", &e))?;
                self.conn = Some(conn);
                Ok(())
            })
            .await;
            match attempt {
                Ok(()) => {
                    self.db_answered = Instant::now();
                    self.recovered();
                    self.status.stalled_idle(false);
                    return Ok(());
                }
                Err(SinkError::Transient { class, message }) => {
                    self.conn = None;
                    self.retrying(class, &message);
                    self.status.stalled_idle(true);
                    if !backoff.wait(&self.shutdown).await {
                        return Err(SinkError::Stopped(message));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The session's `max_statement_time` (seconds) and `wait_timeout` (whole seconds): twice the
/// longest silence the sink leaves on a connection (`connection.ping.interval.ms` while idle, a
/// batch's transaction), at least 10 s.
fn server_timeouts(statement: Duration, ping: Duration) -> (f64, u64) {
    let idle = (2 * statement.max(ping)).as_secs_f64().ceil() as u64;
    (statement.as_secs_f64(), idle.max(10))
}

/// `work` within `limit`, else a transient database error naming the config `key`; the work (and
/// any connection it holds) is dropped.
pub(super) async fn bounded<T>(
    limit: Duration,
    key: &str,
    what: &str,
    work: impl std::future::Future<Output = Result<T, SinkError>>,
) -> Result<T, SinkError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(SinkError::transient(
            class::DATABASE,
            format!("{what}: the mirror database did not answer within {limit:?} ({key}): it or the network path to it is stalled; the connection is dropped and the work retried"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_ends_connections_the_sink_gave_up_on() {
        assert_eq!(server_timeouts(Duration::from_secs(60), Duration::from_secs(5)), (60.0, 120));
        assert_eq!(server_timeouts(Duration::from_millis(2500), Duration::from_secs(1)), (2.5, 10));
        assert_eq!(server_timeouts(Duration::from_secs(3), Duration::from_secs(8)), (3.0, 16));
    }
}
