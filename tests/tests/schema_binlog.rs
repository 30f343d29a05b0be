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

const TABLE_DDL: &str = "CREATE TABLE every_type (
  id INT NOT NULL, k2 VARCHAR(10) NOT NULL,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d52 DECIMAL(5,2), d0 DECIMAL(10,0), f FLOAT, dbl DOUBLE,
  b1 BIT(1), b10 BIT(10), b64 BIT(64), y YEAR, dt DATE,
  t0 TIME, t3 TIME(3), t6 TIME(6), dtm DATETIME, dtm6 DATETIME(6),
  ts TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL,
  c CHAR(10), c255 CHAR(255), vc VARCHAR(300), vcl VARCHAR(20) CHARACTER SET latin1,
  cl CHAR(5) CHARACTER SET latin1 COLLATE latin1_bin, vbin VARCHAR(10) COLLATE utf8mb4_bin,
  tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT,
  bn BINARY(16), vb VARBINARY(300), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
  e ENUM('a','b''c','d,e'), st SET('x','y','z'), j JSON, g GEOMETRY, pt POINT,
  u UUID, i6 INET6, i4 INET4, nn INT NOT NULL DEFAULT 7,
  PRIMARY KEY (k2, id)
) CHARSET utf8mb4";

const ROWS: &[&str] = &[
    // minimums
    "(1, 'min', -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
      -99999999999999999999999999999999999.999999999999999999999999999999, -999.99, -9999999999,
      -3.40282e38, -1.7976931348623157e308, 0, 0, 0, 1901, '1000-01-01',
      '-838:59:59', '-838:59:59.000', '-838:59:59.000000', '1000-01-01 00:00:00',
      '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01', '1970-01-01 00:00:01.000001',
      '', '', '', '', '', '', '', '', '', '', x'00', '', '', '', '', '', 'a', '', '[]',
      ST_GeomFromText('POINT(0 0)'), ST_GeomFromText('POINT(-1.5 2.25)'),
      '00000000-0000-0000-0000-000000000000', '::', '0.0.0.0', 0)",
    // maximums, 4-byte UTF-8, latin1
    "(2, 'max', 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
      9223372036854775807, 18446744073709551615,
      99999999999999999999999999999999999.999999999999999999999999999999, 999.99, 9999999999,
      3.40282e38, 1.7976931348623157e308, 1, b'1111111111', x'FFFFFFFFFFFFFFFF', 2155, '9999-12-31',
      '838:59:59', '-00:00:00.001', '25:00:00.5', '9999-12-31 23:59:59',
      '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', '2038-01-19 03:14:07.999999',
      'ｱ한😀 ', REPEAT('😀', 255), REPEAT('가', 300), 'café €', 'ÿ', 'Bin',
      '😀', REPEAT('x', 1000), 'mt', 'lt', x'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', x'00FF00',
      x'00', x'0102', x'03', x'04', 'd,e', 'x,z', '{\"a\": [1, 2.5, \"😀\", null, true]}',
      ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'), ST_GeomFromText('POINT(1 2)'),
      '6ccd780c-baba-1026-9564-5b8c656024db', '2001:db8::ff00:42:8329', '255.255.255.255', 1)",
    // zero dates and the invalid ENUM value (non-strict SQL mode)
    "(3, 'zero', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '0000-00-00',
      '00:00:00', '00:00:00', '00:00:00', '0000-00-00 00:00:00', '2024-00-00 10:00:00.5',
      '0000-00-00 00:00:00', '0000-00-00 00:00:00', 'a', 'b', 'c', 'd', 'e', 'f',
      't', 't', 't', 't', x'61', 'v', 't', 'b', 'm', 'l', 'bogus', 'y', '0',
      NULL, NULL, NULL, NULL, NULL, 2)",
];

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
