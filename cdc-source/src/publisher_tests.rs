//! The commit/abort states against a stand-in that keeps librdkafka's rule: a transaction
//! whose commit failed stays open (abortable) until it is aborted or the producer replaced,
//! and `begin_transaction` fails meanwhile.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use rdkafka::error::KafkaResult;

use super::deliveries::DeliveryFailure;
use super::*;
use crate::position::{FilePos, GtidPosition};

#[derive(Default)]
struct State {
    calls: Vec<&'static str>,
    open: bool,
    inits: usize,
    commits: VecDeque<KafkaResult<()>>,
    aborts: VecDeque<KafkaResult<()>>,
    /// Delivery failures to report for the next records sent.
    fail_next: VecDeque<RDKafkaErrorCode>,
    deliveries: Option<Arc<Deliveries>>,
    loads: usize,
    fatal: Option<(RDKafkaErrorCode, String)>,
    /// An error `send` returns at once for the next record (librdkafka's own checks).
    refuse_next: Option<RDKafkaErrorCode>,
    /// librdkafka's queue is full and stays full (it keeps a failed transaction's records).
    full: bool,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

impl Fake {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }
}

impl TxnProducer for Fake {
    fn send(
        &self,
        topic: &str,
        key: &[u8],
        value: Option<&[u8]>,
        headers: OwnedHeaders,
        sent: Box<Sent>,
    ) -> Result<(), (KafkaError, OwnedHeaders, Box<Sent>)> {
        let mut s = self.state();
        s.calls.push("send");
        assert!(s.open, "send outside a transaction");
        if let Some(code) = s.refuse_next.take() {
            return Err((KafkaError::MessageProduction(code), headers, sent));
        }
        if s.full {
            return Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), headers, sent));
        }
        if let Some(code) = s.fail_next.pop_front() {
            let failure = DeliveryFailure {
                code: Some(code),
                error: format!("Message production error: {code:?}"),
                topic: topic.to_string(),
                record: sent.record,
                size: key.len() + value.map_or(0, <[u8]>::len),
            };
            s.deliveries.as_ref().unwrap().record(sent.txn, failure);
        }
        Ok(())
    }
    fn send_keyless(
        &self,
        topic: &str,
        _partition: i32,
        headers: OwnedHeaders,
        sent: Box<Sent>,
    ) -> Result<(), (KafkaError, OwnedHeaders, Box<Sent>)> {
        self.send(topic, b"", None, headers, sent)
    }
    fn in_flight_count(&self) -> i32 {
        0
    }
    fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.state().fatal.clone()
    }
    fn init_transactions(&self, _: Duration) -> KafkaResult<()> {
        let mut s = self.state();
        s.calls.push("init");
        s.inits += 1;
        s.open = false;
        s.fatal = None;
        Ok(())
    }
    fn begin_transaction(&self) -> KafkaResult<()> {
        let mut s = self.state();
        s.calls.push("begin");
        if s.open {
            return Err(KafkaError::Global(RDKafkaErrorCode::State));
        }
        s.open = true;
        Ok(())
    }
    fn commit_transaction(&self, _: Duration) -> KafkaResult<()> {
        let mut s = self.state();
        s.calls.push("commit");
        let r = s.commits.pop_front().unwrap_or(Ok(()));
        if r.is_ok() {
            s.open = false;
        }
        r
    }
    fn abort_transaction(&self, _: Duration) -> KafkaResult<()> {
        let mut s = self.state();
        s.calls.push("abort");
        let r = s.aborts.pop_front().unwrap_or(Ok(()));
        if r.is_ok() {
            s.open = false;
        }
        r
    }
}

fn stored(domain_seq: u64) -> OffsetRecord {
    OffsetRecord::at(crate::offsets::StoredOffset {
        gtid: format!("0-1-{domain_seq}").parse::<GtidPosition>().unwrap(),
        binlog: FilePos::default(),
        ts_ms: 0,
    })
}

async fn publisher(fake: &Fake, kafka: &[(&str, &str)]) -> Publisher<Fake> {
    let f = fake.clone();
    let factory: Factory<Fake> = Box::new(move |d| {
        f.state().deliveries = Some(Arc::clone(d));
        Ok(f.clone())
    });
    let l = fake.clone();
    let load: Loader = Box::new(move || {
        l.state().loads += 1;
        Box::pin(async { Ok(Some(stored(7))) })
    });
    let kafka: BTreeMap<String, String> = kafka.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let metrics = SourceMetrics::register(&mut prometheus_client::registry::Registry::default());
    Publisher::with_factory(factory, load, &kafka, "src", "offsets", metrics).await.unwrap()
}

fn row() -> RecordRef {
    RecordRef { table: "shop.users".into(), key: "id=42".into() }
}

async fn send(p: &mut Publisher<Fake>, value: &[u8]) -> Result<(), SourceError> {
    p.send("shop_users", b"k", Some(value), OwnedHeaders::new(), row()).await
}

fn calls(fake: &Fake) -> Vec<&'static str> {
    std::mem::take(&mut fake.state().calls)
}

#[tokio::test]
async fn a_failed_commit_is_aborted_so_the_next_transaction_begins() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[]).await;
    calls(&fake);
    fake.state().commits.push_back(Err(KafkaError::Global(RDKafkaErrorCode::MessageTimedOut)));
    send(&mut p, b"v").await.unwrap();
    let err = p.commit(&stored(5)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(calls(&fake), ["begin", "send", "send", "commit", "abort"]);
    assert!(!p.is_open());
    // The next transaction begins, and commits.
    send(&mut p, b"v").await.unwrap();
    p.commit(&stored(6)).await.unwrap();
    assert_eq!(calls(&fake), ["begin", "send", "send", "commit"]);
}

#[tokio::test]
async fn a_producer_that_cannot_abort_is_recreated() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[]).await;
    fake.state().commits.push_back(Err(KafkaError::Global(RDKafkaErrorCode::MessageTimedOut)));
    fake.state().aborts.push_back(Err(KafkaError::Global(RDKafkaErrorCode::Fatal)));
    send(&mut p, b"v").await.unwrap();
    p.commit_with_sent_offset().await.unwrap_err();
    let inits = fake.state().inits;
    assert_eq!(inits, 2, "recreated: {:?}", calls(&fake));
    send(&mut p, b"v").await.unwrap();
    p.commit_with_sent_offset().await.unwrap();
}

#[tokio::test]
async fn after_a_failed_commit_the_position_is_re_read_once() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[]).await;
    p.commit(&stored(5)).await.unwrap();
    assert_eq!(p.settled_position().await.unwrap(), None, "a commit that succeeded is known");
    fake.state().commits.push_back(Err(KafkaError::Global(RDKafkaErrorCode::OperationTimedOut)));
    p.commit(&stored(6)).await.unwrap_err();
    // Whatever the in-memory position says, the offsets topic decides.
    assert_eq!(p.settled_position().await.unwrap(), Some(stored(7)));
    assert_eq!(p.settled_position().await.unwrap(), None);
    assert_eq!(fake.state().loads, 1);
}

#[tokio::test]
async fn a_record_the_broker_refuses_as_too_large_is_definite_and_named() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[]).await;
    // The broker refuses the batch: every record in it fails; the largest is the culprit.
    fake.state().fail_next.extend([RDKafkaErrorCode::MessageSizeTooLarge; 2]);
    fake.state().commits.push_back(Err(KafkaError::Global(RDKafkaErrorCode::MessageSizeTooLarge)));
    p.send("shop_users", b"k", Some(b"small"), OwnedHeaders::new(), RecordRef { table: "shop.users".into(), key: "id=1".into() })
        .await
        .unwrap();
    send(&mut p, &[b'x'; 20_000]).await.unwrap();
    let err = p.commit(&stored(5)).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    let text = err.to_string();
    for want in ["shop.users", "id=42", "20001 bytes", "shop_users", "max.message.bytes", "kafka.message.max.bytes"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    let calls = calls(&fake);
    assert!(calls.ends_with(&["commit", "abort"]), "{calls:?}");
}

#[tokio::test]
async fn failures_of_an_aborted_transaction_do_not_taint_the_next() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[]).await;
    fake.state().fail_next.push_back(RDKafkaErrorCode::MessageSizeTooLarge);
    send(&mut p, b"v").await.unwrap();
    p.abort().await.unwrap();
    send(&mut p, b"v").await.unwrap();
    p.commit_with_sent_offset().await.unwrap();
    // A late report of the aborted transaction's record.
    let d = fake.state().deliveries.clone().unwrap();
    let stale = DeliveryFailure { code: Some(RDKafkaErrorCode::MessageSizeTooLarge), error: String::new(), topic: "t".into(), record: row(), size: 1 };
    d.record(1, stale);
    assert!(d.failure().is_none());
}

#[tokio::test]
async fn a_queue_that_stays_full_past_the_transaction_timeout_ends_with_the_timeout() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[("transaction.timeout.ms", "50")]).await;
    send(&mut p, b"v").await.unwrap();
    fake.state().full = true;
    let err = tokio::time::timeout(Duration::from_secs(5), send(&mut p, b"w"))
        .await
        .expect("the wait for room ends by itself")
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    let text = err.to_string();
    for want in ["transaction.timeout.ms=50", "kafka.transaction.timeout.ms"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
}

#[tokio::test]
async fn a_full_queue_behind_a_failed_record_ends_with_that_failure() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[]).await;
    fake.state().fail_next.push_back(RDKafkaErrorCode::MessageSizeTooLarge);
    send(&mut p, b"too large").await.unwrap();
    fake.state().full = true;
    let err = tokio::time::timeout(Duration::from_secs(5), send(&mut p, b"next"))
        .await
        .expect("no wait for room that cannot come")
        .unwrap_err();
    assert!(matches!(err, SourceError::RecordTooLarge(_)), "{err}");
}

#[tokio::test]
async fn a_transaction_open_past_its_timeout_names_the_timeout_settings() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[("transaction.timeout.ms", "50")]).await;
    fake.state().commits.push_back(Err(KafkaError::Global(RDKafkaErrorCode::InvalidProducerEpoch)));
    send(&mut p, b"v").await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    let err = p.commit_with_sent_offset().await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    let text = err.to_string();
    for want in ["transaction.timeout.ms=50", "kafka.transaction.timeout.ms", "transaction.max.timeout.ms"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    assert!(!text.contains("took over"), "{text}");
}

#[tokio::test]
async fn a_fenced_commit_stops_without_fencing_back() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[]).await;
    fake.state().commits.push_back(Err(KafkaError::Global(RDKafkaErrorCode::ProducerFenced)));
    fake.state().aborts.push_back(Err(KafkaError::Global(RDKafkaErrorCode::ProducerFenced)));
    send(&mut p, b"v").await.unwrap();
    let err = p.commit_with_sent_offset().await.unwrap_err();
    assert!(!err.is_transient() && err.to_string().contains("took over"), "{err}");
    assert_eq!(fake.state().inits, 1);
}

/// What librdkafka did in the experiment (tests/tests/source_kafka_faults.rs): the broker
/// aborted the transaction on its timeout, the next ProduceRequest was refused for its old
/// epoch, the producer became fatal with _FENCED, and from then on every call fails.
fn fenced_on_timeout(fake: &Fake) {
    let mut s = fake.state();
    s.fatal = Some((RDKafkaErrorCode::Fenced, "ProduceRequest failed: Broker: Producer attempted an operation with an old epoch".into()));
    s.commits.push_back(Err(KafkaError::Global(RDKafkaErrorCode::Fatal)));
    s.aborts.push_back(Err(KafkaError::Global(RDKafkaErrorCode::Fatal)));
}

#[tokio::test]
async fn a_fatal_fence_after_the_transaction_timeout_is_the_timeout() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[("transaction.timeout.ms", "50")]).await;
    send(&mut p, b"v").await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    fenced_on_timeout(&fake);
    let err = p.commit_with_sent_offset().await.unwrap_err();
    let text = err.to_string();
    assert!(!err.is_transient(), "{text}");
    assert!(text.contains("transaction.timeout.ms=50") && !text.contains("took over"), "{text}");
    assert_eq!(fake.state().inits, 1, "no recreate after a definite error");
}

#[tokio::test]
async fn a_fatal_fence_in_a_young_transaction_is_another_instance() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[]).await;
    send(&mut p, b"v").await.unwrap();
    fenced_on_timeout(&fake);
    let err = p.commit_with_sent_offset().await.unwrap_err();
    assert!(!err.is_transient() && err.to_string().contains("took over"), "{err}");
    assert_eq!(fake.state().inits, 1, "no recreate: it would fence the other instance back");
}

#[tokio::test]
async fn an_abort_failing_past_the_transaction_timeout_names_the_timeout() {
    // The stream aborts after a failed send; that abort's error is what the source stops with.
    let fake = Fake::default();
    let mut p = publisher(&fake, &[("transaction.timeout.ms", "50")]).await;
    send(&mut p, b"v").await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    fenced_on_timeout(&fake);
    let text = p.abort().await.unwrap_err().to_string();
    assert!(text.contains("transaction.timeout.ms=50") && !text.contains("took over"), "{text}");
    assert!(!p.is_open());
}

#[tokio::test]
async fn a_record_over_the_producers_own_limit_is_definite_and_named() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[("message.max.bytes", "1000")]).await;
    fake.state().refuse_next = Some(RDKafkaErrorCode::MessageSizeTooLarge);
    let err = send(&mut p, &[b'x'; 2000]).await.unwrap_err();
    let text = err.to_string();
    assert!(!err.is_transient(), "{text}");
    for want in ["shop.users", "id=42", "2001 bytes", "bigger than 1000 bytes", "kafka.message.max.bytes"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
}

#[tokio::test]
async fn records_pending_count_what_is_unacknowledged_and_uncommitted() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[]).await;
    let (unacked, uncommitted) = (p.deliveries.unacknowledged.clone(), p.uncommitted.clone());
    send(&mut p, b"v").await.unwrap();
    send(&mut p, b"v").await.unwrap();
    assert_eq!((unacked.get(), uncommitted.get()), (2, 2));
    // The broker acknowledges one; a late report of an earlier transaction changes nothing.
    let d = fake.state().deliveries.clone().unwrap();
    d.reported(d.current());
    d.reported(d.current() - 1);
    assert_eq!((unacked.get(), uncommitted.get()), (1, 2));
    // The offset record is one more; once committed nothing is pending.
    p.commit(&stored(5)).await.unwrap();
    assert_eq!(uncommitted.get(), 0);
    send(&mut p, b"v").await.unwrap();
    assert_eq!((unacked.get(), uncommitted.get()), (1, 1));
    p.abort().await.unwrap();
    assert_eq!((unacked.get(), uncommitted.get()), (0, 0));
}

#[tokio::test]
async fn a_record_past_the_transaction_timeout_ends_with_the_timeout() {
    let fake = Fake::default();
    let mut p = publisher(&fake, &[("transaction.timeout.ms", "50")]).await;
    send(&mut p, b"v").await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let err = send(&mut p, b"v").await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    let text = err.to_string();
    for want in ["open 0.", "transaction.timeout.ms=50 ms", "kafka.transaction.timeout.ms"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    assert_eq!(calls(&fake).iter().filter(|c| **c == "send").count(), 1, "the late record is not sent");
    p.abort().await.unwrap();
    send(&mut p, b"v").await.unwrap();
    p.commit_with_sent_offset().await.unwrap();
}
