//! What the Publisher knows of its records' deliveries, and the producer calls it makes.
//!
//! Each record carries, as its delivery opaque, what it is ([`RecordRef`]: table and primary key)
//! and which transaction it belongs to; librdkafka's delivery callback ([`DeliveryContext`])
//! notes the first failure of the current transaction in [`Deliveries`], so the commit fails
//! naming the record. [`TxnProducer`] is the producer's interface: librdkafka's in production, a
//! stand-in in the unit tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::gauge::Gauge;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::time::Duration;

/// What a record is, for the error when it cannot be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    /// `database.table`, or the offsets topic for the offset record.
    pub table: String,
    /// The primary key, as `col=value` pairs.
    pub key: String,
}

impl RecordRef {
    /// The reference of a row of `table` with key `values` (primary-key columns in key order).
    pub fn row(table: &cdc_schema::TableSchema, values: &[cdc_schema::Value]) -> RecordRef {
        let key = table
            .primary_key
            .iter()
            .zip(values)
            .map(|(c, v)| format!("{c}={}", key_text(v)))
            .collect::<Vec<_>>()
            .join(", ");
        RecordRef { table: format!("{}.{}", table.database, table.table), key }
    }
}

pub(super) fn key_text(v: &cdc_schema::Value) -> String {
    use cdc_schema::Value as V;
    match v {
        V::Null => "NULL".into(),
        V::Int(i) => i.to_string(),
        V::Bool(b) => b.to_string(),
        V::String(s) => format!("'{s}'"),
        other => format!("{other:?}"),
    }
}

/// A record failed on its way to the broker.
#[derive(Debug, Clone)]
pub(super) struct DeliveryFailure {
    pub(super) code: Option<RDKafkaErrorCode>,
    pub(super) error: String,
    pub(super) topic: String,
    pub(super) record: RecordRef,
    /// Key plus value bytes.
    pub(super) size: usize,
}

impl DeliveryFailure {
    pub(super) fn too_large(&self) -> bool {
        is_too_large(self.code)
    }
}

pub(super) fn is_too_large(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(code, Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge))
}

/// The delivery failures of the current transaction, shared with librdkafka's delivery callback.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// The transaction records are sent in; reports of earlier (aborted) ones are ignored.
    pub(super) txn: AtomicU64,
    pub(super) failure: Mutex<Option<DeliveryFailure>>,
    /// Records of the current transaction handed to librdkafka and not yet acknowledged
    /// (`cdc_source_records_pending{stage="unacknowledged"}`).
    pub(super) unacknowledged: Gauge,
}

impl Deliveries {
    pub(super) fn new(unacknowledged: Gauge) -> Self {
        Deliveries { unacknowledged, ..Deliveries::default() }
    }

    /// A record of transaction `txn` was acknowledged or failed.
    pub(super) fn reported(&self, txn: u64) {
        if txn == self.current() {
            self.unacknowledged.dec();
        }
    }

    /// Keeps the most telling failure: a too-large record over anything else, the largest one
    /// among those (a batch the broker refuses fails every record in it).
    pub(super) fn record(&self, txn: u64, failure: DeliveryFailure) {
        if txn != self.txn.load(Ordering::SeqCst) {
            return;
        }
        let mut kept = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        let better = match &*kept {
            None => true,
            Some(k) => failure.too_large() && (!k.too_large() || failure.size > k.size),
        };
        if better {
            *kept = Some(failure);
        }
    }

    pub(super) fn failure(&self) -> Option<DeliveryFailure> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts a new transaction's reports.
    pub(super) fn next_txn(&self) -> u64 {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        // The previous transaction's records are committed or dropped.
        self.unacknowledged.set(0);
        self.txn.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(super) fn current(&self) -> u64 {
        self.txn.load(Ordering::SeqCst)
    }
}

/// The delivery opaque of one record.
#[derive(Debug)]
pub struct Sent {
    pub(super) txn: u64,
    pub(super) record: RecordRef,
}

/// librdkafka's callbacks: delivery failures go to [`Deliveries`].
#[derive(Debug)]
pub struct DeliveryContext {
    pub(super) deliveries: Arc<Deliveries>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Sent>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Sent>) {
        self.deliveries.reported(sent.txn);
        if let Err((e, m)) = result {
            let size = m.payload_len() + m.key_len();
            let failure = DeliveryFailure {
                code: e.rdkafka_error_code(),
                error: e.to_string(),
                topic: m.topic().to_string(),
                record: sent.record,
                size,
            };
            self.deliveries.record(sent.txn, failure);
        }
    }
}

/// The calls the Publisher makes on a transactional producer: librdkafka's in production, a
/// stand-in in the unit tests. `send` hands the headers and opaque back when it fails, so a full
/// queue can be retried.
pub trait TxnProducer: Clone + Send + Sync + 'static {
    #[allow(clippy::result_large_err)]
    fn send(
        &self,
        topic: &str,
        key: &[u8],
        value: Option<&[u8]>,
        headers: OwnedHeaders,
        sent: Box<Sent>,
    ) -> Result<(), (KafkaError, OwnedHeaders, Box<Sent>)>;
    /// Like `send` for a record without key and value on one `partition` (the truncate record).
    #[allow(clippy::result_large_err)]
    fn send_keyless(
        &self,
        topic: &str,
        partition: i32,
        headers: OwnedHeaders,
        sent: Box<Sent>,
    ) -> Result<(), (KafkaError, OwnedHeaders, Box<Sent>)>;
    fn in_flight_count(&self) -> i32;
    /// The error that put the producer in its fatal state, if it is in one.
    fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)>;
    fn init_transactions(&self, timeout: Duration) -> KafkaResult<()>;
    fn begin_transaction(&self) -> KafkaResult<()>;
    fn commit_transaction(&self, timeout: Duration) -> KafkaResult<()>;
    fn abort_transaction(&self, timeout: Duration) -> KafkaResult<()>;
}

/// The producer the source runs with.
pub type KafkaProducer = ThreadedProducer<DeliveryContext>;

impl TxnProducer for KafkaProducer {
    fn send(
        &self,
        topic: &str,
        key: &[u8],
        value: Option<&[u8]>,
        headers: OwnedHeaders,
        sent: Box<Sent>,
    ) -> Result<(), (KafkaError, OwnedHeaders, Box<Sent>)> {
        let mut record = BaseRecord::with_opaque_to(topic, sent).key(key).headers(headers);
        if let Some(v) = value {
            record = record.payload(v);
        }
        ThreadedProducer::send(self, record)
            .map_err(|(e, r)| (e, r.headers.unwrap_or_default(), r.delivery_opaque))
    }
    fn send_keyless(
        &self,
        topic: &str,
        partition: i32,
        headers: OwnedHeaders,
        sent: Box<Sent>,
    ) -> Result<(), (KafkaError, OwnedHeaders, Box<Sent>)> {
        let record: BaseRecord<'_, (), (), Box<Sent>> =
            BaseRecord::with_opaque_to(topic, sent).partition(partition).headers(headers);
        ThreadedProducer::send(self, record)
            .map_err(|(e, r)| (e, r.headers.unwrap_or_default(), r.delivery_opaque))
    }
    fn in_flight_count(&self) -> i32 {
        Producer::in_flight_count(self)
    }
    fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        Producer::client(self).fatal_error()
    }
    fn init_transactions(&self, timeout: Duration) -> KafkaResult<()> {
        Producer::init_transactions(self, timeout)
    }
    fn begin_transaction(&self) -> KafkaResult<()> {
        Producer::begin_transaction(self)
    }
    fn commit_transaction(&self, timeout: Duration) -> KafkaResult<()> {
        Producer::commit_transaction(self, timeout)
    }
    fn abort_transaction(&self, timeout: Duration) -> KafkaResult<()> {
        Producer::abort_transaction(self, timeout)
    }
}

