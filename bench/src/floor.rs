//! Floors: the source's own building blocks timed alone, to show where a run's time goes.
//!
//! - **binlog**: the source's [`BinlogReader`] over a W1 range, once only reading events, once
//!   also decoding every row (`mysql_common`) and converting it to the column model
//!   (`cdc_schema::row_from_binlog`), once decoding every row with the source's own decoder
//!   (`cdc_schema::RowsDecoder`, as the source does) — what any record format costs before
//!   encoding.
//! - **kafka**: the source's [`Publisher`] (transactional producer, same settings) sending records
//!   of the size the source writes for `orders` (JSON with schema, four headers), committing every
//!   `batch` records — what publishing costs without reading or encoding anything; also with
//!   records of the size of its Avro records.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use cdc_schema::{row_from_binlog, RowsDecoder, TableSchema};
use cdc_source::binlog::reader::{BinlogReader, Timeouts};
use cdc_source::metrics::SourceMetrics;
use cdc_source::offsets::{OffsetRecord, StoredOffset};
use cdc_source::topics::ensure_topics;
use cdc_source::position::FilePos;
use cdc_source::publisher::{Publisher, RecordRef};
use mysql_async::binlog::events::EventData;
use rdkafka::message::{Header, OwnedHeaders};

use cdc_testkit::Stack;
use crate::workload::{self, Prepared, Workload};

/// How [`read_range`] decodes rows events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    /// Not at all: events only.
    No,
    /// mysql_common's `RowsEvent::rows`, then `row_from_binlog`.
    MysqlCommon,
    /// The source's own [`RowsDecoder`].
    Own,
}

/// Reads the W1 range of `rows` rows three times (events only; events + mysql_common row
/// decoding; events + the source's own decoder). Returns (read-only time, mysql_common
/// decoding time, own decoding time, rows decoded).
pub async fn binlog(
    stack: &Stack,
    rows: u64,
) -> anyhow::Result<(Prepared, Duration, Duration, Duration, u64)> {
    let tag = format!(
        "bench_floor_{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    workload::create_database(stack, &tag).await?;
    let range = workload::prepare(stack, &tag, Workload::W1, rows).await?;
    let (read_only, _) = read_range(stack, &range, Decode::No).await?;
    let (decoding, decoded) = read_range(stack, &range, Decode::MysqlCommon).await?;
    let (own, own_decoded) = read_range(stack, &range, Decode::Own).await?;
    anyhow::ensure!(own_decoded == decoded, "own decoder read {own_decoded} rows, mysql_common {decoded}");
    workload::drop_database(stack, &tag).await?;
    Ok((range, read_only, decoding, own, decoded))
}

async fn read_range(
    stack: &Stack,
    range: &Prepared,
    decode: Decode,
) -> anyhow::Result<(Duration, u64)> {
    let opts: mysql_async::Opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(stack.mariadb_host.clone())
        .tcp_port(stack.mariadb_port)
        .user(Some(stack.source_user.clone()))
        .pass(Some(stack.source_password.clone()))
        .prefer_socket(false)
        .into();
    let server_id = 90_000 + std::process::id() % 10_000;
    let started = Instant::now();
    let mut reader = BinlogReader::connect(
        opts,
        server_id,
        &range.start.gtid,
        Duration::from_secs(1),
        Timeouts { connect: Duration::from_secs(10), read: Duration::from_secs(30) },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut schemas: HashMap<u64, Arc<TableSchema>> = HashMap::new();
    let mut decoded = 0u64;
    loop {
        let event = reader
            .next()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .context("the server ended the stream")?;
        if decode != Decode::No {
            if let Ok(Some(EventData::RowsEvent(rows))) = event.read_data() {
                let tme = reader
                    .table_map(rows.table_id())
                    .context("rows event without its table map")?;
                let schema = match schemas.get(&rows.table_id()) {
                    Some(s) => s.clone(),
                    None => {
                        let s = Arc::new(
                            TableSchema::from_table_map(tme).map_err(|e| anyhow::anyhow!("{e}"))?,
                        );
                        schemas.insert(rows.table_id(), s.clone());
                        s
                    }
                };
                if decode == Decode::Own {
                    let decoder = RowsDecoder::new(&schema, tme)?;
                    for row in decoder.rows(&rows, false)? {
                        if row?.1.is_some() {
                            decoded += 1;
                        }
                    }
                } else {
                    for row in rows.rows(tme) {
                        let (_, after) = row?;
                        if let Some(after) = after {
                            row_from_binlog(&schema, &after).map_err(|e| anyhow::anyhow!("{e}"))?;
                            decoded += 1;
                        }
                    }
                }
            }
        }
        let at = reader.stream_position();
        if at.file == range.end.file && at.pos >= range.end.pos {
            break;
        }
    }
    let took = started.elapsed();
    reader.close().await;
    Ok((took, decoded))
}

/// Sends `rows` records through the source's publisher, committing every `batch`; records are
/// shaped like JSON-with-schema ones, or sized like Avro ones (`avro`). Returns the time.
pub async fn kafka(stack: &Stack, rows: u64, batch: u64, avro: bool) -> anyhow::Result<Duration> {
    let tag = format!(
        "bench_floor_{}_{batch}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    let (topic, offsets) = (format!("{tag}_orders"), format!("{tag}_offsets"));
    let kafka = stack.kafka();
    ensure_topics(
        &kafka,
        &[(topic.clone(), 1, false), (offsets.clone(), 1, true)],
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut registry = cdc_common::Registry::default();
    let metrics = SourceMetrics::register(&mut registry);
    let mut publisher = Publisher::connect(&kafka, &tag, &offsets, metrics)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let offset = OffsetRecord::at(StoredOffset {
        gtid: "0-1-1".parse().map_err(anyhow::Error::msg)?,
        binlog: FilePos::default(),
        ts_ms: 0,
    });
    let started = Instant::now();
    for i in 0..rows {
        let (key, value) = if avro {
            avro_sized_record(i)
        } else {
            sample_record(&tag, i)
        };
        let ts = (1_795_579_230_000 + i).to_string();
        let binlog = format!("mysql-bin.000010:{}", 4 + i * 100);
        let headers = OwnedHeaders::new_with_capacity(4)
            .insert(Header {
                key: "cdc.op",
                value: Some("c"),
            })
            .insert(Header {
                key: "cdc.gtid",
                value: Some("0-1-45999"),
            })
            .insert(Header {
                key: "cdc.binlog",
                value: Some(binlog.as_str()),
            })
            .insert(Header {
                key: "cdc.ts_ms",
                value: Some(ts.as_str()),
            });
        publisher
            .send(&topic, key.as_bytes(), Some(value.as_bytes()), headers, bench_record(i))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if (i + 1) % batch == 0 || i + 1 == rows {
            publisher
                .commit(&offset)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let took = started.elapsed();
    let _ = crate::kafka::delete_topics(&kafka, &[topic, offsets]).await;
    Ok(took)
}

/// A key and value of the size of the source's Avro records of `orders` (wire-format header, then
/// the row's fields; the bytes are text, which compresses about as well).
fn avro_sized_record(i: u64) -> (String, String) {
    let key = format!("\0\0\0\0\x01{:02}", i % 100);
    let value = format!(
        "\0\0\0\0\x02{:06}product-{:05}{:02}{:04}{:06}user-{:07}order-{i:010}{:08}",
        i + 1,
        i % 50_000,
        1 + i % 9,
        100 + i % 997,
        (1 + i % 9) * (100 + i % 997),
        i % 1_000_003,
        1_795_579_230u64
    );
    (key, value)
}

/// A key and value shaped like the source's JSON-with-schema records of `orders`.
fn sample_record(tag: &str, i: u64) -> (String, String) {
    let int = |f: &str, opt: bool| {
        format!(
            r#"{{"type":"int32","optional":{opt},"parameters":{{"cdc.column.type":"int"}},"field":"{f}"}}"#
        )
    };
    let text = |f: &str, n: u32| {
        format!(
            r#"{{"type":"string","optional":false,"parameters":{{"cdc.column.type":"varchar({n})"}},"field":"{f}"}}"#
        )
    };
    let key = format!(
        r#"{{"schema":{{"type":"struct","fields":[{}],"optional":false,"name":"{tag}_orders.Key"}},"payload":{{"id":{}}}}}"#,
        int("id", false),
        i + 1
    );
    let fields = [
        int("id", false),
        text("product_id", 20),
        int("qty", true),
        int("unit_price", true),
        int("total_price", true),
        text("user_id", 50),
        text("order_id", 50),
        r#"{"type":"int64","optional":true,"name":"cdc.LocalMicroTimestamp","version":1,"parameters":{"cdc.column.type":"datetime"},"field":"created_at"}"#.to_string(),
    ];
    let (qty, price) = (1 + i % 9, 100 + i % 997);
    let value = format!(
        r#"{{"schema":{{"type":"struct","fields":[{}],"optional":false,"name":"{tag}_orders.Value"}},"payload":{{"id":{},"product_id":"product-{:05}","qty":{qty},"unit_price":{price},"total_price":{},"user_id":"user-{:07}","order_id":"order-{i:010}","created_at":1795579230000000}}}}"#,
        fields.join(","),
        i + 1,
        i % 50_000,
        qty * price,
        i % 1_000_003
    );
    (key, value)
}

/// What one Kafka transaction commit costs, `commits` times each way, one record per
/// transaction: through the source's [`Publisher`] (its offset record is still in flight when it
/// commits), and through a plain transactional `FutureProducer` with the source's settings, once
/// committing with the record in flight and once after awaiting its delivery. Returns the median
/// commit time of each: (publisher, in flight, delivered first).
pub async fn commit_cost(
    stack: &Stack,
    commits: u32,
) -> anyhow::Result<(Duration, Duration, Duration)> {
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
    let tag = format!(
        "bench_floor_commit_{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    let (topic, offsets) = (format!("{tag}_orders"), format!("{tag}_offsets"));
    let kafka = stack.kafka();
    ensure_topics(
        &kafka,
        &[(topic.clone(), 1, false), (offsets.clone(), 1, true)],
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut registry = cdc_common::Registry::default();
    let metrics = SourceMetrics::register(&mut registry);
    let mut publisher = Publisher::connect(&kafka, &tag, &offsets, metrics)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let offset = OffsetRecord::at(StoredOffset {
        gtid: "0-1-1".parse().map_err(anyhow::Error::msg)?,
        binlog: FilePos::default(),
        ts_ms: 0,
    });
    let mut through_publisher = Vec::new();
    for i in 0..commits {
        let (key, value) = avro_sized_record(u64::from(i));
        publisher
            .send(&topic, key.as_bytes(), Some(value.as_bytes()), OwnedHeaders::new(), bench_record(u64::from(i)))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let started = Instant::now();
        publisher
            .commit(&offset)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        through_publisher.push(started.elapsed());
    }
    drop(publisher);
    let mut cfg = rdkafka::ClientConfig::new();
    for (k, v) in &kafka {
        cfg.set(k, v);
    }
    cfg.set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("retry.backoff.ms", "5")
        .set("retry.backoff.max.ms", "100")
        .set("enable.idempotence", "true")
        .set("transactional.id", format!("{tag}-plain"));
    let producer: FutureProducer = cfg.create()?;
    let p = producer.clone();
    tokio::task::spawn_blocking(move || p.init_transactions(Duration::from_secs(30))).await??;
    let (mut in_flight, mut delivered) = (Vec::new(), Vec::new());
    for i in 0..commits * 2 {
        let (key, value) = avro_sized_record(u64::from(i));
        producer.begin_transaction()?;
        let delivery = producer
            .send_result(FutureRecord::to(&topic).key(&key).payload(&value))
            .map_err(|(e, _)| e)?;
        let wait_first = i % 2 == 1;
        if wait_first {
            let _ = delivery.await;
        }
        let p = producer.clone();
        let started = Instant::now();
        tokio::task::spawn_blocking(move || p.commit_transaction(Duration::from_secs(30)))
            .await??;
        if wait_first {
            delivered.push(started.elapsed());
        } else {
            in_flight.push(started.elapsed());
        }
    }
    let _ = crate::kafka::delete_topics(&kafka, &[topic, offsets]).await;
    Ok((
        median(through_publisher),
        median(in_flight),
        median(delivered),
    ))
}

/// Names a bench record in the Publisher's errors.
fn bench_record(i: u64) -> RecordRef {
    RecordRef { table: "cdc-bench".into(), key: format!("record {i}") }
}
