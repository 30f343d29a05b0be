//! cdc-schema against the real MariaDB: a table with every supported type, read once through the
//! binlog (as a replica) and once through `information_schema` + `SELECT`, must give the same
//! schema and the same values. Every rows event read is decoded twice, by the source's
//! `RowsDecoder` and by mysql_common + `row_from_binlog`, which must agree (inserts, updates
//! with and without their before-image, deletes).

use std::time::Duration;

use cdc_schema::{row_from_binlog, row_from_snapshot, Decimal, RowImages, RowsDecoder, TableSchema, Value};
use cdc_tests::{unique_name, Stack};
use futures::StreamExt;
use mysql_async::binlog::events::EventData;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn, OptsBuilder};

use cdc_tests::fixtures::{EVERY_TYPE_DDL as TABLE_DDL, EVERY_TYPE_ROWS as ROWS};

async fn master_position(conn: &mut Conn) -> (String, u64) {
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("SHOW MASTER STATUS")
        .expect("binary logging is on (stack/up starts MariaDB with --log-bin)");
    (row.get(0).expect("file"), row.get(1).expect("position"))
}

/// Reads the binlog from `file:pos` until `expected` row changes in `db` were seen; returns the
/// schema of its first table map and each row's images as the source's `RowsDecoder` reads them.
/// With `compare`, each rows event is also decoded by mysql_common + `row_from_binlog`, and the
/// two must agree.
async fn read_binlog(
    stack: &Stack,
    db: &str,
    file: &str,
    pos: u64,
    expected: usize,
    compare: bool,
) -> (TableSchema, Vec<RowImages>) {
    let opts = OptsBuilder::from_opts(stack.root_opts(None)).prefer_socket(false);
    let mut conn = Conn::new(opts).await.expect("replica connection");
    conn.query_drop("SET @mariadb_slave_capability=4")
        .await
        .expect("set capability");
    // One server id per replica connection: the tests of this file run in parallel.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let server_id = 3_000_000 + (std::process::id() % 100_000) * 10 + n % 10;
    let request = BinlogStreamRequest::new(server_id)
        .with_filename(file.as_bytes())
        .with_pos(pos);
    let mut stream = conn
        .get_binlog_stream(request)
        .await
        .expect("binlog stream");
    let mut schema = None;
    let mut rows = Vec::new();
    while rows.len() < expected {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("binlog event within 30 s")
            .expect("stream open")
            .expect("event");
        match event.read_data().expect("event data") {
            Some(EventData::TableMapEvent(tme)) if tme.database_name() == db => {
                let built = TableSchema::from_table_map(&tme).expect("schema from table map");
                schema.get_or_insert(built);
            }
            Some(EventData::RowsEvent(data)) => {
                let Some(tme) = stream.get_tme(data.table_id()) else {
                    continue;
                };
                if tme.database_name() != db {
                    continue;
                }
                let table = schema.as_ref().expect("table map before rows");
                let decoder = RowsDecoder::new(table, tme).expect("decoder for the table map");
                let ours: Vec<RowImages> = decoder
                    .rows(&data, true)
                    .expect("rows event")
                    .map(|row| row.expect("own decoder reads the row"))
                    .collect();
                if compare {
                    let theirs: Vec<RowImages> = data
                        .rows(tme)
                        .map(|row| {
                            let (before, after) = row.expect("row decodes");
                            let convert = |r: Option<_>| {
                                r.map(|r| row_from_binlog(table, &r).expect("binlog values convert"))
                            };
                            (convert(before), convert(after))
                        })
                        .collect();
                    assert_eq!(ours, theirs, "own decoder and mysql_common disagree on {:?}", data);
                    let after_only: Vec<_> = decoder
                        .rows(&data, false)
                        .expect("rows event")
                        .map(|row| row.expect("own decoder reads the row"))
                        .collect();
                    let expected: Vec<_> = theirs
                        .iter()
                        .map(|(b, a)| (if a.is_some() { None } else { b.clone() }, a.clone()))
                        .collect();
                    assert_eq!(after_only, expected, "skipping the UPDATE before-image changed a row");
                }
                rows.extend(ours);
            }
            _ => {}
        }
    }
    (schema.expect("a table map was seen"), rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn binlog_and_snapshot_agree_on_every_type() {
    let stack = Stack::from_env();
    let db = unique_name("schema_binlog");
    let mut conn = stack.root_conn(None).await;
    let (file, pos) = master_position(&mut conn).await;
    conn.query_drop(format!("CREATE DATABASE {db} CHARACTER SET utf8mb4"))
        .await
        .expect("create database");
    conn.query_drop(format!("USE {db}")).await.expect("use");
    conn.query_drop("SET time_zone = '+00:00', sql_mode = ''")
        .await
        .expect("session");
    conn.query_drop(TABLE_DDL).await.expect("create table");
    for row in ROWS {
        conn.query_drop(format!("INSERT INTO every_type VALUES {row}"))
            .await
            .expect("insert");
    }
    conn.query_drop("INSERT INTO every_type (id, k2) VALUES (4, 'nulls')")
        .await
        .expect("insert nulls");

    let loaded = TableSchema::load(&mut conn, &db, "every_type")
        .await
        .expect("schema from information_schema");
    let (from_binlog, binlog_rows) = read_binlog(&stack, &db, &file, pos, 4, true).await;
    let binlog_rows: Vec<Vec<Value>> = binlog_rows
        .into_iter()
        .map(|(_, after)| after.expect("insert has an after image"))
        .collect();
    assert_eq!(
        from_binlog, loaded,
        "table map and information_schema disagree"
    );
    assert_eq!(loaded.primary_key, vec!["k2".to_string(), "id".to_string()]);

    // Snapshot in a session with a different time zone: select_list makes it irrelevant.
    conn.query_drop("SET time_zone = '+05:30'")
        .await
        .expect("tz");
    let select = format!(
        "SELECT {} FROM every_type ORDER BY id",
        loaded.select_list()
    );
    let binary: Vec<mysql_async::Row> = conn.exec(select.as_str(), ()).await.expect("select");
    let text: Vec<mysql_async::Row> = conn.query(select.as_str()).await.expect("select");
    let decode = |rows: &[mysql_async::Row]| -> Vec<Vec<Value>> {
        rows.iter()
            .map(|r| row_from_snapshot(&loaded, r).expect("snapshot values convert"))
            .collect()
    };
    let (binary, text) = (decode(&binary), decode(&text));
    for (i, binlog_row) in binlog_rows.iter().enumerate() {
        for (c, column) in loaded.columns.iter().enumerate() {
            assert_eq!(
                binlog_row[c], binary[i][c],
                "row {i} column {} (binary protocol)",
                column.name
            );
            assert_eq!(
                binlog_row[c], text[i][c],
                "row {i} column {} (text protocol)",
                column.name
            );
        }
    }

    let col = |row: usize, name: &str| {
        let idx = loaded
            .columns
            .iter()
            .position(|c| c.name == name)
            .expect("column");
        binlog_rows[row][idx].clone()
    };
    assert_eq!(col(1, "biu"), Value::Decimal(Decimal::from_u64(u64::MAX)));
    assert_eq!(
        col(0, "t0"),
        Value::Time(-(838 * 3600 + 59 * 60 + 59) * 1_000_000)
    );
    assert_eq!(col(1, "t6"), Value::Time(25 * 3_600_000_000 + 500_000));
    assert_eq!(col(1, "c"), Value::String("ｱ한😀".into()));
    assert_eq!(col(1, "vcl"), Value::String("café €".into()));
    assert_eq!(col(1, "ts6"), Value::Timestamp(2_147_483_647_999_999));
    assert_eq!(col(2, "ts"), Value::Timestamp(0));
    assert_eq!(col(2, "e"), Value::String(String::new()));
    assert_eq!(col(1, "st"), Value::String("x,z".into()));
    assert_eq!(col(3, "nn"), Value::Int(7));
    assert_eq!(col(3, "d65"), Value::Null);
    let Value::Decimal(d65) = col(0, "d65") else {
        panic!("d65 is a decimal")
    };
    assert_eq!(d65.digits(), 65);

    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// Updates (every column image, a changed key) and deletes of every type: both decoders agree.
#[tokio::test(flavor = "multi_thread")]
async fn own_decoder_agrees_on_updates_and_deletes_of_every_type() {
    let stack = Stack::from_env();
    let db = unique_name("schema_binlog_ud");
    let mut conn = stack.root_conn(None).await;
    conn.query_drop(format!("CREATE DATABASE {db} CHARACTER SET utf8mb4"))
        .await
        .expect("create database");
    conn.query_drop(format!("USE {db}")).await.expect("use");
    conn.query_drop("SET time_zone = '+00:00', sql_mode = ''")
        .await
        .expect("session");
    conn.query_drop(TABLE_DDL).await.expect("create table");
    for row in ROWS {
        conn.query_drop(format!("INSERT INTO every_type VALUES {row}"))
            .await
            .expect("insert");
    }
    conn.query_drop("INSERT INTO every_type (id, k2) VALUES (4, 'nulls')")
        .await
        .expect("insert nulls");
    let (file, pos) = master_position(&mut conn).await;
    conn.query_drop("UPDATE every_type SET id = id + 10, ti = 1 - ti, c = 'upd', j = '{}'")
        .await
        .expect("update");
    conn.query_drop("DELETE FROM every_type").await.expect("delete");
    let (_, changes) = read_binlog(&stack, &db, &file, pos, 8, true).await;
    let updates = changes.iter().filter(|(b, a)| b.is_some() && a.is_some()).count();
    let deletes = changes.iter().filter(|(b, a)| b.is_some() && a.is_none()).count();
    assert_eq!((updates, deletes), (4, 4));
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// Negative TIME(1)/TIME(2) values with a fraction (which mysql_common's decoding overflows on)
/// read as the snapshot reads them.
#[tokio::test(flavor = "multi_thread")]
async fn own_decoder_reads_negative_times_with_fractions() {
    let stack = Stack::from_env();
    let db = unique_name("schema_binlog_time");
    let mut conn = stack.root_conn(None).await;
    conn.query_drop(format!("CREATE DATABASE {db}"))
        .await
        .expect("create database");
    conn.query_drop(format!("USE {db}")).await.expect("use");
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY, t1 TIME(1), t2 TIME(2), t4 TIME(4))")
        .await
        .expect("create table");
    let (file, pos) = master_position(&mut conn).await;
    conn.query_drop(
        "INSERT INTO t VALUES (1, '-00:00:01.5', '-00:00:01.50', '-00:00:01.5001'),
         (2, '-838:59:58.9', '-00:00:00.01', '-12:00:00.0001'), (3, '-00:00:00.0', '-00:00:00.99', '00:00:00')",
    )
    .await
    .expect("insert");
    let (schema, rows) = read_binlog(&stack, &db, &file, pos, 3, false).await;
    let select = format!("SELECT {} FROM t ORDER BY id", schema.select_list());
    let selected: Vec<mysql_async::Row> = conn.query(select.as_str()).await.expect("select");
    for ((_, after), row) in rows.iter().zip(&selected) {
        let snapshot = row_from_snapshot(&schema, row).expect("snapshot values convert");
        assert_eq!(after.as_ref().expect("insert has an after image"), &snapshot);
    }
    assert_eq!(rows[0].1.as_ref().map(|r| r[1].clone()), Some(Value::Time(-1_500_000)));
    conn.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}
