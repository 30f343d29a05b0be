//! Where binlog transactions (event groups) begin and end, and how they end: a pure state machine
//! fed event by event, with no I/O. `crate::stream` acts on what it answers.
//!
//! # Groups as MariaDB 10.11 writes them (binlog_format=ROW)
//! - transaction: GTID (`FL_TRANSACTIONAL` for InnoDB-only groups), table maps and rows, then an
//!   XID event; a group of non-transactional tables (MyISAM, Aria) ends with a `COMMIT` query.
//!   A group ending with a `ROLLBACK` query changed nothing that can be published as committed
//!   (the server writes one only for mixed-engine transactions; 10.11 writes the non-transactional
//!   part as its own `COMMIT` group in every case we could produce, so such groups are covered by
//!   the unit tests below).
//! - DDL and other single statements: GTID with `FL_STANDALONE`, then one query event.
//! - XA: `XA START` … `XA END`, `XA PREPARE` is one group (GTID with `FL_PREPARED_XA` and the
//!   XID) with the rows, ending with an XA_PREPARE event (type 38): the rows are *not* committed
//!   yet. The outcome comes later as its own standalone group (GTID with `FL_COMPLETED_XA` and the
//!   XID) holding one query, `XA COMMIT X'…',X'…',n` or `XA ROLLBACK …`, without rows.
//!   `XA COMMIT … ONE PHASE` is written as an ordinary transaction.
//!
//! # What the stream does with each [`Step`]
//! - [`Step::Open`]: a group starts. `isolate` means it may end without committing (XA prepare,
//!   or a group that is not fully transactional and could end in `ROLLBACK`): commit what the
//!   Kafka transaction holds first, so aborting this group's records later loses nothing else.
//! - [`Step::Commit`]: the group committed; its records stay in the Kafka transaction and the
//!   position moves past it. `ddl` is table DDL to act on (TRUNCATE, RENAME, DROP).
//! - [`Step::Discard`]: the group ended without committing: abort the Kafka transaction (only this
//!   group's records are in it) and move the position past the group.
//! - [`Step::XaOutcome`]: the later `XA COMMIT`/`XA ROLLBACK` of a prepared group.

use crate::binlog::ddl::{self, Ddl};
use crate::binlog::mariadb::{GtidEvent, Xid};

/// One binlog event, as far as boundaries are concerned.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Gtid(&'a GtidEvent),
    /// XID event: the commit of a transactional group.
    XidCommit,
    /// A query event: its text and default database.
    Query { sql: &'a str, db: &'a str },
    /// XA_PREPARE event, with the XID it prepares if it parsed.
    XaPrepare(Option<&'a Xid>),
}

/// Why a group publishes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discard {
    /// It ended with a `ROLLBACK` query.
    Rollback,
    /// `XA PREPARE`: its rows wait for a later `XA COMMIT`.
    XaPrepared(Option<Xid>),
}

impl Discard {
    /// Label value for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Discard::Rollback => "rollback",
            Discard::XaPrepared(_) => "xa_prepare",
        }
    }
}

/// What the stream must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Not a boundary: keep streaming the rows of the open group (if any).
    Continue,
    /// A group opened; `isolate`: commit the open Kafka transaction before streaming its rows.
    Open { isolate: bool },
    /// The group committed.
    Commit { ddl: Option<Ddl> },
    /// The group ended without committing.
    Discard(Discard),
    /// The standalone `XA COMMIT` (`commit`) or `XA ROLLBACK` of the group prepared as `xid`.
    XaOutcome { xid: Option<Xid>, commit: bool },
}

/// The boundary state: the group open right now, if any.
#[derive(Debug, Default)]
pub struct Boundary {
    open: Option<GtidEvent>,
}

fn starts_with_words(sql: &str, words: &[&str]) -> bool {
    let mut rest = sql.trim_start();
    for w in words {
        let Some(head) = rest.get(..w.len()) else { return false };
        if !head.eq_ignore_ascii_case(w) {
            return false;
        }
        rest = &rest[w.len()..];
        if rest.chars().next().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return false;
        }
        rest = rest.trim_start();
    }
    true
}

impl Boundary {
    /// The group open right now.
    pub fn open(&self) -> Option<&GtidEvent> {
        self.open.as_ref()
    }

    /// Forgets the open group (on a new connection, which starts at a group boundary).
    pub fn reset(&mut self) {
        self.open = None;
    }

    /// Feeds one event; the answer says what to do.
    pub fn feed(&mut self, input: Input<'_>) -> Step {
        match input {
            Input::Gtid(g) => {
                let isolate = g.prepared_xa() || (!g.standalone && !g.transactional());
                self.open = Some(g.clone());
                Step::Open { isolate }
            }
            Input::XidCommit => {
                self.open = None;
                Step::Commit { ddl: None }
            }
            Input::XaPrepare(xid) => {
                let xid = xid.cloned().or_else(|| self.open.take().and_then(|g| g.xid));
                self.open = None;
                Step::Discard(Discard::XaPrepared(xid))
            }
            Input::Query { sql, db } => match self.open.take() {
                // A standalone group is its single statement.
                Some(g) if g.standalone => {
                    let xa_commit = starts_with_words(sql, &["XA", "COMMIT"]);
                    if g.completed_xa() || xa_commit || starts_with_words(sql, &["XA", "ROLLBACK"]) {
                        Step::XaOutcome { xid: g.xid, commit: xa_commit }
                    } else {
                        Step::Commit { ddl: ddl::parse(sql, db) }
                    }
                }
                Some(g) => {
                    let text = sql.trim();
                    if text.eq_ignore_ascii_case("COMMIT") {
                        Step::Commit { ddl: None }
                    } else if text.eq_ignore_ascii_case("ROLLBACK") {
                        Step::Discard(Discard::Rollback)
                    } else {
                        // BEGIN, XA END, SAVEPOINT, ROLLBACK TO SAVEPOINT …: inside the group.
                        self.open = Some(g);
                        Step::Continue
                    }
                }
                // A query outside any group (no GTID before it) stands alone.
                None => {
                    if sql.trim().eq_ignore_ascii_case("ROLLBACK") {
                        Step::Discard(Discard::Rollback)
                    } else {
                        Step::Commit { ddl: ddl::parse(sql, db) }
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::ddl::TableName;
    use crate::binlog::mariadb::{FL_COMPLETED_XA, FL_DDL, FL_PREPARED_XA, FL_STANDALONE, FL_TRANSACTIONAL};
    use crate::position::Gtid;

    fn gtid(seq: u64, flags: u8, xid: Option<Xid>) -> GtidEvent {
        GtidEvent { gtid: Gtid { domain: 0, server: 1, seq }, flags, standalone: flags & FL_STANDALONE != 0, xid }
    }

    fn x1() -> Xid {
        Xid { format_id: 1, gtrid: b"x1".to_vec(), bqual: Vec::new() }
    }

    fn q<'a>(sql: &'a str) -> Input<'a> {
        Input::Query { sql, db: "d" }
    }

    #[test]
    fn innodb_transaction_commits_at_xid() {
        let mut b = Boundary::default();
        assert_eq!(b.feed(Input::Gtid(&gtid(1, 0x0c, None))), Step::Open { isolate: false });
        assert!(b.open().is_some());
        assert_eq!(b.feed(q("BEGIN")), Step::Continue);
        assert_eq!(b.feed(Input::XidCommit), Step::Commit { ddl: None });
        assert!(b.open().is_none());
    }

    #[test]
    fn non_transactional_group_is_isolated_and_commits_at_commit_query() {
        let mut b = Boundary::default();
        assert_eq!(b.feed(Input::Gtid(&gtid(2, 0x08, None))), Step::Open { isolate: true });
        assert_eq!(b.feed(q("COMMIT")), Step::Commit { ddl: None });
    }

    #[test]
    fn rollback_group_is_discarded() {
        let mut b = Boundary::default();
        assert_eq!(b.feed(Input::Gtid(&gtid(3, 0x08, None))), Step::Open { isolate: true });
        assert_eq!(b.feed(q("SAVEPOINT a")), Step::Continue);
        assert_eq!(b.feed(q("ROLLBACK TO SAVEPOINT a")), Step::Continue);
        assert_eq!(b.feed(q(" rollback ")), Step::Discard(Discard::Rollback));
        assert!(b.open().is_none());
        // The next group is an ordinary one again.
        assert_eq!(b.feed(Input::Gtid(&gtid(4, FL_TRANSACTIONAL, None))), Step::Open { isolate: false });
        assert_eq!(b.feed(Input::XidCommit), Step::Commit { ddl: None });
    }

    #[test]
    fn xa_prepare_then_rollback() {
        let mut b = Boundary::default();
        let prepare = gtid(5, 0x4c, Some(x1()));
        assert_eq!(b.feed(Input::Gtid(&prepare)), Step::Open { isolate: true });
        assert_eq!(b.feed(q("XA END X'7831',X'',1")), Step::Continue);
        assert_eq!(b.feed(Input::XaPrepare(Some(&x1()))), Step::Discard(Discard::XaPrepared(Some(x1()))));
        let done = gtid(6, 0x8d, Some(x1()));
        assert_eq!(b.feed(Input::Gtid(&done)), Step::Open { isolate: false });
        assert_eq!(b.feed(q("XA ROLLBACK X'7831',X'',1")), Step::XaOutcome { xid: Some(x1()), commit: false });
    }

    #[test]
    fn xa_prepare_then_commit() {
        let mut b = Boundary::default();
        b.feed(Input::Gtid(&gtid(7, FL_PREPARED_XA | FL_TRANSACTIONAL, Some(x1()))));
        // The XID comes from the GTID event when the XA_PREPARE event's did not parse.
        assert_eq!(b.feed(Input::XaPrepare(None)), Step::Discard(Discard::XaPrepared(Some(x1()))));
        b.feed(Input::Gtid(&gtid(8, FL_COMPLETED_XA | FL_STANDALONE, Some(x1()))));
        assert_eq!(b.feed(q("XA COMMIT X'7831',X'',1")), Step::XaOutcome { xid: Some(x1()), commit: true });
    }

    #[test]
    fn standalone_ddl() {
        let mut b = Boundary::default();
        let name = TableName { db: "d".into(), table: "t".into() };
        assert_eq!(b.feed(Input::Gtid(&gtid(9, FL_STANDALONE | FL_DDL, None))), Step::Open { isolate: false });
        assert_eq!(b.feed(q("truncate table t")), Step::Commit { ddl: Some(Ddl::Truncate(name.clone())) });
        b.feed(Input::Gtid(&gtid(10, FL_STANDALONE | FL_DDL, None)));
        assert_eq!(b.feed(q("create table u (id int primary key)")), Step::Commit { ddl: None });
        b.feed(Input::Gtid(&gtid(11, FL_STANDALONE | FL_DDL, None)));
        assert_eq!(b.feed(q("DROP TABLE `t` /* generated by server */")), Step::Commit { ddl: Some(Ddl::Drop(vec![name])) });
        // A `COMMIT`-looking word inside a standalone statement does not matter: it ends anyway.
        b.feed(Input::Gtid(&gtid(12, FL_STANDALONE, None)));
        assert_eq!(b.feed(q("XA COMMITTED")), Step::Commit { ddl: None });
    }

    #[test]
    fn query_outside_a_group() {
        let mut b = Boundary::default();
        assert_eq!(b.feed(q("COMMIT")), Step::Commit { ddl: None });
        assert_eq!(b.feed(q("ROLLBACK")), Step::Discard(Discard::Rollback));
    }
}
