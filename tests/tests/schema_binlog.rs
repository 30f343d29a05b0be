//! cdc-schema against the real MariaDB: a table with every supported type, read once through the
//! binlog (as a replica) and once through `information_schema` + `SELECT`, must give the same
//! schema and the same values.

use std::time::Duration;

use cdc_schema::{row_from_binlog, row_from_snapshot, Decimal, TableSchema, Value};
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

/// Reads the binlog from `file:pos` until `expected` rows of `db`.every_type were seen; returns
/// the schema of its first table map and the decoded rows.
async fn read_binlog(
    stack: &Stack,
    db: &str,
    file: &str,
    pos: u64,
    expected: usize,
) -> (TableSchema, Vec<Vec<Value>>) {
    let opts = OptsBuilder::from_opts(stack.root_opts(None)).prefer_socket(false);
    let mut conn = Conn::new(opts).await.expect("replica connection");
    conn.query_drop("SET @mariadb_slave_capability=4")
        .await
        .expect("set capability");
    let server_id = 3_000_000 + std::process::id() % 1_000_000;
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
                for row in data.rows(tme) {
                    let (_, after) = row.expect("row decodes");
                    let after = after.expect("insert has an after image");
                    rows.push(row_from_binlog(table, &after).expect("binlog values convert"));
                }
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
    let (from_binlog, binlog_rows) = read_binlog(&stack, &db, &file, pos, 4).await;
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
