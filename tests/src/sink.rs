//! Helpers of the sink's end-to-end tests: a database and topics per test, records typed like the
//! source's `users` table, a running `jdbc-sink` process, and reads of the mirror.

use std::sync::Arc;
use std::time::Duration;

use cdc_schema::{Field, FieldType, Record, RecordSchema, Value, COLUMN_TYPE_PARAM};
use mysql_async::prelude::Queryable;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::process::Service;
use crate::Stack;

/// One test's own database and topic.
#[derive(Debug, Clone)]
pub struct SinkCase {
    pub stack: Stack,
    pub database: String,
    pub topic: String,
    pub http_port: u16,
}

impl SinkCase {
    /// Creates a database and a topic with `partitions` partitions, named after `prefix`.
    pub async fn new(prefix: &str, partitions: i32) -> SinkCase {
        SinkCase::on(Stack::from_env(), prefix, partitions).await
    }

    /// Like [`SinkCase::new`], with the mirror database on `stack`'s MariaDB (a private one).
    pub async fn on(stack: Stack, prefix: &str, partitions: i32) -> SinkCase {
        let database = crate::unique_name(prefix);
        let mut conn = stack.root_conn(None).await;
        conn.query_drop(format!(
            "CREATE DATABASE `{database}` CHARACTER SET utf8mb4"
        ))
        .await
        .expect("create test database");
        let topic = format!("my_topic_{database}");
        create_topic(&stack.kafka_bootstrap, &topic, partitions).await;
        SinkCase {
            stack,
            database,
            topic,
            http_port: free_port(),
        }
    }

    /// A TOML config for this case (root account, this database and topic) plus `extra` lines.
    pub fn toml(&self, extra: &str) -> String {
        format!(
            "topics = \"{topic}\"\n\"connection.url\" = \"jdbc:mysql://{host}:{port}/{db}\"\n\
             \"connection.user\" = \"{user}\"\n\"connection.password\" = \"{pw}\"\n\
             \"http.listen\" = \"127.0.0.1:{http}\"\n\"name\" = \"sink-{db}\"\n\
             \"auto.create\" = true\n\"retry.backoff.ms\" = 50\n{extra}\n\
             [kafka]\n\"bootstrap.servers\" = \"{kafka}\"\n",
            topic = self.topic,
            host = self.stack.mariadb_host,
            port = self.stack.mariadb_port,
            db = self.database,
            user = self.stack.root_user,
            pw = self.stack.root_password,
            http = self.http_port,
            kafka = self.stack.kafka_bootstrap,
        )
    }

    /// Starts `jdbc-sink` with `config` (TOML or connector JSON, by `ext`) and environment `env`.
    pub fn start_sink(&self, config: &str, ext: &str, env: &[(&str, &str)]) -> Service {
        Service::start("jdbc-sink", &self.database, config, ext, &[], env)
    }

    /// Rows of `sql` in this database, every column as text (NULL as `None`).
    pub async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        crate::pipeline::query_text(&self.stack, &self.database, sql).await
    }

    /// Polls `sql` until it returns `expected` (as text rows) or `timeout` passes.
    pub async fn wait_rows(
        &self,
        sql: &str,
        expected: &[&[Option<&str>]],
        timeout: Duration,
        sink: &Service,
    ) {
        let want: Vec<Vec<Option<String>>> = expected
            .iter()
            .map(|r| r.iter().map(|c| c.map(str::to_string)).collect())
            .collect();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let got = self.rows(sql).await;
            if got == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "mirror never matched for `{sql}`:\n got  {got:?}\n want {want:?}\nsink log:\n{}",
                sink.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// GET on the sink's HTTP port: status code and body.
    pub async fn http(&self, path: &str) -> (u16, String) {
        match reqwest::get(format!("http://127.0.0.1:{}{path}", self.http_port)).await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }
}

pub use cdc_testkit::free_port;

/// Creates `topic` (replication 1) and waits until it exists.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .expect("create topic");
    for r in results {
        if let Err((name, code)) = r {
            assert_eq!(
                code,
                rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                "creating {name}"
            );
        }
    }
}

/// A plain producer, as a person or another system would use.
pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer")
}

/// Produces one message and waits for the acknowledgement.
pub async fn send(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let mut headers = OwnedHeaders::new();
    headers = headers.insert(Header {
        key: "cdc.op",
        value: Some("c"),
    });
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
    if let Some(p) = partition {
        record = record.partition(p);
    }
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(v) = value {
        record = record.payload(v);
    }
    producer
        .send(record, Duration::from_secs(10))
        .await
        .expect("delivered");
}

fn field(name: &str, field_type: FieldType, optional: bool, column_type: &str) -> Field {
    let mut f = Field::new(name, field_type, optional);
    f.parameters
        .push((COLUMN_TYPE_PARAM.to_string(), column_type.to_string()));
    f
}

/// Key and value schemas of the tutorial's `users` table as the source describes it, with
/// `extra` value fields appended.
pub fn users_schemas(topic: &str, extra: Vec<Field>) -> (Arc<RecordSchema>, Arc<RecordSchema>) {
    let key = RecordSchema {
        name: Some(format!("{topic}.Key")),
        fields: vec![field("id", FieldType::Int32, false, "int")],
    };
    let mut fields = vec![
        field("id", FieldType::Int32, false, "int"),
        field("user_id", FieldType::String, true, "varchar(20)"),
        field("pwd", FieldType::String, true, "varchar(20)"),
        field("name", FieldType::String, true, "varchar(20)"),
    ];
    fields.extend(extra);
    (
        Arc::new(key),
        Arc::new(RecordSchema {
            name: Some(format!("{topic}.Value")),
            fields,
        }),
    )
}

/// A `users` row: key record and value record (`extra` values follow the four columns).
pub fn users_row(
    schemas: &(Arc<RecordSchema>, Arc<RecordSchema>),
    id: i64,
    user_id: &str,
    pwd: &str,
    name: &str,
    extra: Vec<Value>,
) -> (Record, Record) {
    let key = Record {
        schema: schemas.0.clone(),
        values: vec![Value::Int(id)],
    };
    let mut values = vec![
        Value::Int(id),
        Value::String(user_id.into()),
        Value::String(pwd.into()),
        Value::String(name.into()),
    ];
    values.extend(extra);
    (
        key,
        Record {
            schema: schemas.1.clone(),
            values,
        },
    )
}

/// A field with a recorded column type, for schemas built in tests.
pub fn typed_field(name: &str, field_type: FieldType, optional: bool, column_type: &str) -> Field {
    field(name, field_type, optional, column_type)
}
