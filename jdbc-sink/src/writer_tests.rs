use std::sync::Arc;

use cdc_schema::{Field, FieldType};

use super::*;
use crate::change::Shape;
use crate::errors::MessageId;
use crate::ident::Ident;

const LIMIT: StatementLimit = StatementLimit {
    max_allowed_packet: 16 << 20,
    single: (16 << 20) - PACKET_HEADROOM_BYTES,
    cut: MAX_STATEMENT_BYTES,
    bulk: false,
};

fn shape(pk: &[&str], rest: &[&str]) -> Arc<Shape> {
    let fields = pk
        .iter()
        .chain(rest)
        .map(|n| Field::new(n, FieldType::Int32, false))
        .collect();
    Arc::new(Shape::new(fields, pk.len()).unwrap())
}

fn change(table: &str, op: Op, shape: &Arc<Shape>, literals: &[&str], offset: i64) -> Change {
    Change {
        table: Ident::new(table).unwrap(),
        op,
        shape: shape.clone(),
        literals: literals.iter().copied().collect(),
        binds: Vec::new(),
        origin: MessageId {
            topic: "t".into(),
            partition: 0,
            offset,
        },
        enum_blanks: Vec::new(),
    }
}

#[test]
fn collapse_keeps_the_last_change_of_each_key() {
    let s = shape(&["id"], &["v"]);
    let d = shape(&["id"], &[]);
    let changes = vec![
        change("a", Op::Write, &s, &["1", "10"], 0),
        change("a", Op::Write, &s, &["2", "20"], 1),
        change("a", Op::Write, &s, &["1", "11"], 2),
        change("b", Op::Write, &s, &["1", "99"], 3),
        change("a", Op::Delete, &d, &["2"], 4),
    ];
    let out = collapse(changes.clone(), InsertMode::Upsert);
    let offsets: Vec<i64> = out.iter().map(|c| c.origin.offset).collect();
    assert_eq!(offsets, vec![2, 3, 4]);
    assert_eq!(collapse(changes, InsertMode::Insert).len(), 5);
}

#[test]
fn upsert_statement_is_multi_row() {
    let s = shape(&["id"], &["v", "w"]);
    let a = change("my_topic_users", Op::Write, &s, &["1", "'x'", "NULL"], 0);
    let b = change("my_topic_users", Op::Write, &s, &["2", "'y'", "3"], 1);
    let sql = statements(&[&a, &b], InsertMode::Upsert, LIMIT).unwrap();
    assert_eq!(
        sql,
        vec!["INSERT INTO `my_topic_users` (`id`, `v`, `w`) VALUES (1,'x',NULL),(2,'y',3) ON DUPLICATE KEY UPDATE `v` = VALUES(`v`), `w` = VALUES(`w`)"]
    );
}

#[test]
fn delete_and_update_statements() {
    let d = shape(&["a", "b"], &[]);
    let x = change("t", Op::Delete, &d, &["1", "'k'"], 0);
    let y = change("t", Op::Delete, &d, &["2", "'l'"], 1);
    assert_eq!(
        statements(&[&x, &y], InsertMode::Upsert, LIMIT).unwrap(),
        vec!["DELETE FROM `t` WHERE (`a`, `b`) IN ((1,'k'),(2,'l'))"]
    );
    let s = shape(&["id"], &["v"]);
    let u = change("t", Op::Write, &s, &["7", "'z'"], 2);
    assert_eq!(
        statements(&[&u], InsertMode::Update, LIMIT).unwrap(),
        vec!["UPDATE `t` SET `v` = 'z' WHERE `id` = 7"]
    );
}

#[test]
fn key_only_upsert_and_chunking() {
    let s = shape(&["id"], &[]);
    let a = change("t", Op::Write, &s, &["1"], 0);
    assert_eq!(
        statements(&[&a], InsertMode::Upsert, LIMIT).unwrap(),
        vec!["INSERT INTO `t` (`id`) VALUES (1) ON DUPLICATE KEY UPDATE `id` = `id`"]
    );
    let big = "x".repeat(MAX_STATEMENT_BYTES / 3);
    let parts = chunked("H ", " T", (0..4).map(|_| (big.as_str(), false)), LIMIT).unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts
        .iter()
        .all(|p| p.starts_with("H ") && p.ends_with(" T") && p.len() <= MAX_STATEMENT_BYTES));
}

#[test]
fn non_upsert_groups_only_consecutive_changes() {
    let s = shape(&["id"], &["v"]);
    let t = shape(&["id"], &["w"]);
    let changes = [
        change("a", Op::Write, &s, &["1", "1"], 0),
        change("a", Op::Write, &t, &["2", "2"], 1),
        change("a", Op::Write, &s, &["3", "3"], 2),
    ];
    let changes: Vec<&Change> = changes.iter().collect();
    assert_eq!(group(&changes, InsertMode::Insert).len(), 3);
    assert_eq!(group(&changes, InsertMode::Upsert).len(), 2);
}

#[test]
fn a_keyless_change_keyed_by_the_table_collapses_with_the_keyed_changes_of_its_row() {
    // A keyed change of row 4 (from the source), then a keyless one of the same row whose value
    // lists the columns in another order (typed by hand), then the keyed one again.
    let keyed = shape(&["id"], &["name"]);
    let keyless = shape(&[], &["name", "ID"]);
    let typed = change("users", Op::Write, &keyless, &["'typed'", "4"], 1);
    let mut shapes = HashMap::new();
    let rekeyed = typed.keyed_by(&["id".to_string()], &mut shapes).expect("has the key column");
    assert_eq!(rekeyed.shape.pk_len, 1);
    assert_eq!(rekeyed.literals.iter().collect::<Vec<_>>(), vec!["4", "'typed'"]);
    assert_eq!(rekeyed.key(), "4");
    assert!(typed.keyed_by(&["other".to_string()], &mut shapes).is_none(), "a missing key column leaves it keyless");

    let out = collapse(
        vec![
            change("users", Op::Write, &keyed, &["4", "'source'"], 0),
            rekeyed.clone(),
        ],
        InsertMode::Upsert,
    );
    let offsets: Vec<i64> = out.iter().map(|c| c.origin.offset).collect();
    assert_eq!(offsets, vec![1], "the later, typed change of row 4 wins");
    let out = collapse(
        vec![rekeyed, change("users", Op::Write, &keyed, &["4", "'source'"], 2)],
        InsertMode::Upsert,
    );
    let offsets: Vec<i64> = out.iter().map(|c| c.origin.offset).collect();
    assert_eq!(offsets, vec![2], "the later, source change of row 4 wins");
    // Without its key, a keyless change never shares a statement with keyed ones.
    assert_ne!(keyless.id, shape(&["name"], &["ID"]).id);
}

#[test]
fn the_limit_follows_the_servers_packet() {
    assert_eq!(StatementLimit::default(), LIMIT);
    let small = StatementLimit::new(64 * 1024);
    assert_eq!((small.single, small.cut), (63 * 1024, 63 * 1024));
    let big = StatementLimit::new(64 << 20);
    assert_eq!((big.single, big.cut), ((64 << 20) - 1024, MAX_STATEMENT_BYTES));
    assert_eq!(StatementLimit::new(100).single, 0);
}

#[test]
fn statements_are_cut_at_the_limit_counting_every_byte() {
    let limit = StatementLimit::new(2048);
    let texts: Vec<String> = (0..10).map(|i| format!("{i}").repeat(100)).collect();
    let items = || texts.iter().map(|t| (t.as_str(), false));
    let parts = chunked("H ", " T", items(), limit).unwrap();
    assert!(parts.iter().all(|p| p.len() <= limit.cut), "{:?}", parts.iter().map(String::len).collect::<Vec<_>>());
    assert_eq!(parts.concat().matches('9').count(), 100, "every item once");
    // Exactly at the limit: head + item + ',' + item + tail.
    let exact = StatementLimit { cut: 2 + 100 + 1 + 100 + 2, ..limit };
    assert_eq!(chunked("H ", " T", items().take(2), exact).unwrap().len(), 1);
    let under = StatementLimit { cut: exact.cut - 1, ..limit };
    assert_eq!(chunked("H ", " T", items().take(2), under).unwrap().len(), 2);
}

#[test]
fn a_change_over_the_limit_alone_is_refused_with_its_size_and_a_long_one_under_it_is_alone() {
    let s = shape(&["id"], &["v"]);
    let blob = format!("X'{}'", "AB".repeat(2000));
    let big = change("t", Op::Write, &s, &["2", &blob], 1);
    let small = change("t", Op::Write, &s, &["1", "NULL"], 0);
    let alone = statements(&[&big], InsertMode::Upsert, LIMIT).unwrap()[0].len();
    let limit = StatementLimit::new(alone + PACKET_HEADROOM_BYTES - 1);
    assert_eq!(statements(&[&small, &big], InsertMode::Upsert, limit), Err(alone));
    let update = format!("UPDATE `t` SET `v` = {blob} WHERE `id` = 2").len();
    let under = StatementLimit::new(update + PACKET_HEADROOM_BYTES - 1);
    assert_eq!(statements(&[&big], InsertMode::Update, under), Err(update), "update");
    let at = StatementLimit::new(update + PACKET_HEADROOM_BYTES);
    assert_eq!(statements(&[&big], InsertMode::Update, at).unwrap()[0].len(), update);
    let limit = StatementLimit::new(alone + PACKET_HEADROOM_BYTES);
    let limit = StatementLimit { cut: 100, ..limit };
    // Over the cut but within the packet: sent alone.
    assert_eq!(statements(&[&small, &big], InsertMode::Upsert, limit).unwrap().len(), 2);
    let message = too_large_message(&big, alone, StatementLimit::new(4096));
    for part in ["table `t`", "key 2", &format!("{alone} bytes"), "max_allowed_packet of 4096", "hex"] {
        assert!(message.contains(part), "{part}: {message}");
    }
}

#[test]
fn bulk_only_on_mariadb_10_2_and_later() {
    assert!(bulk_capable("11.4.2-MariaDB-ubu2404"));
    assert!(bulk_capable("10.2.0-MariaDB"));
    assert!(!bulk_capable("10.1.48-MariaDB"));
    assert!(!bulk_capable("8.0.36"));
}

#[test]
fn inserts_and_upserts_go_bulk_with_one_placeholder_per_column() {
    let s = shape(&["id"], &["v"]);
    let mut a = change("t", Op::Write, &s, &["1", "'x'"], 0);
    a.binds = vec![mysql_async::Value::Int(1), mysql_async::Value::Bytes(b"x".to_vec())];
    let mut b = a.clone();
    b.binds[0] = mysql_async::Value::Int(2);
    let bulk = StatementLimit { bulk: true, ..LIMIT };
    let (sql, rows) = bulk_statement(&[&a, &b], InsertMode::Upsert, bulk).unwrap();
    assert_eq!(sql, "INSERT INTO `t` (`id`, `v`) VALUES (?,?) ON DUPLICATE KEY UPDATE `v` = VALUES(`v`)");
    assert_eq!(rows.len(), 2);
    assert!(bulk_statement(&[&a], InsertMode::Upsert, LIMIT).is_none(), "not a MariaDB connection");
    assert!(bulk_statement(&[&a], InsertMode::Update, bulk).is_none(), "updates stay text");
    let d = change("t", Op::Delete, &shape(&["id"], &[]), &["1"], 1);
    assert!(bulk_statement(&[&d], InsertMode::Upsert, bulk).is_none(), "deletes stay text");
    let tiny = StatementLimit { cut: 40, ..bulk };
    assert!(bulk_statement(&[&a], InsertMode::Upsert, tiny).is_none(), "a row over the cut stays text");
}
