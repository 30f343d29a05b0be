//! Reading topics in tests, as a `read_committed` consumer would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// One consumed record.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: HashMap<String, String>,
}

impl Consumed {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Reads every committed record of `topic` from the beginning until `want` records were read or
/// `timeout` passed (then returns what it has). Aborted transactions are never seen.
pub fn read_topic(bootstrap: &str, topic: &str, want: usize, timeout: Duration) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("cdc-tests-reader-{}", crate::unique_name("g")))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("test consumer");
    let deadline = Instant::now() + timeout;
    // Wait for the topic to exist, then assign all its partitions from the start.
    let partitions = loop {
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5));
        if let Ok(md) = md {
            let parts: Vec<i32> = md
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if !parts.is_empty() {
                break parts;
            }
        }
        if Instant::now() > deadline {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    poll_records(&consumer, want, deadline, |_| false)
}

/// Reads every committed record of `topic` up to its end offsets as they are when the read
/// starts (call it once the writers are stopped); panics when that takes longer than `timeout`.
pub fn read_to_end(bootstrap: &str, topic: &str, timeout: Duration) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("cdc-tests-reader-{}", crate::unique_name("g")))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("test consumer");
    let deadline = Instant::now() + timeout;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("topic metadata");
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        let (_, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).expect("watermarks");
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).expect("partition");
        ends.insert(p.id(), high);
    }
    consumer.assign(&tpl).expect("assign");
    let done = |c: &BaseConsumer| {
        let Ok(pos) = c.position() else { return false };
        ends.iter().all(|(p, high)| {
            *high == 0 || pos.find_partition(topic, *p).and_then(|e| e.offset().to_raw()).is_some_and(|o| o >= *high)
        })
    };
    let out = poll_records(&consumer, usize::MAX, deadline, done);
    assert!(done(&consumer), "{topic} was not read to its end offsets {ends:?} within {timeout:?} ({} records)", out.len());
    out
}

/// Polls `consumer` until `want` records, `deadline`, or `done(consumer)`.
fn poll_records(consumer: &BaseConsumer, want: usize, deadline: Instant, done: impl Fn(&BaseConsumer) -> bool) -> Vec<Consumed> {
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline && !done(consumer) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let mut headers = HashMap::new();
            if let Some(h) = m.headers() {
                for hd in h.iter() {
                    headers.insert(hd.key.to_string(), String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned());
                }
            }
            out.push(Consumed {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
            });
        }
    }
    out
}
