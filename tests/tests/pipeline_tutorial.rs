//! The tutorial through both services: a row inserted, updated and deleted in `users` appears,
//! changes and disappears in the mirror table `my_topic_…users`, in both record formats; and the
//! tutorial's manual flow, a JSON-with-schema record typed into a plain producer, lands as a row
//! next to the source's records.

use std::time::Duration;

use cdc_tests::pipeline::{PipelineSetup, USERS_COLUMNS};
use cdc_tests::process::Service;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

const WAIT: Duration = Duration::from_secs(60);

fn stop(mut service: Service) {
    let code = service.terminate(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(0),
        "{} exits 0 on SIGTERM:\n{}",
        service.name,
        service.log_text()
    );
}

async fn insert_update_delete(format: &str) {
    let p = PipelineSetup::new(&format!("pl_tut_{format}")).await;
    let source = p.start_source(format, "\"delete.enabled\" = true");
    let sink = p.start_sink("a", "\"delete.enabled\" = true", &[]);
    let services = [&source, &sink];
    let table = p.topic("users");
    let select = format!("SELECT id, user_id, pwd, name FROM `{table}` ORDER BY id");

    p.exec(&["insert into users(user_id,pwd,name) values('user1','test1111','User name')"])
        .await;
    p.wait_mirror(
        &select,
        &[&[
            Some("1"),
            Some("user1"),
            Some("test1111"),
            Some("User name"),
        ]],
        WAIT,
        &services,
    )
    .await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], WAIT, &services)
        .await;

    p.exec(&["update users set pwd='test2222', name='Renamed' where user_id='user1'"])
        .await;
    p.wait_mirror(
        &select,
        &[&[Some("1"), Some("user1"), Some("test2222"), Some("Renamed")]],
        WAIT,
        &services,
    )
    .await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], WAIT, &services)
        .await;

    p.exec(&["delete from users where user_id='user1'"]).await;
    p.wait_mirror(&select, &[], WAIT, &services).await;

    // The created_at column kept its exact value while it existed, and a later row still flows.
    p.exec(&["insert into users(user_id,pwd,name) values('user2','pw','After delete')"])
        .await;
    p.wait_mirror(
        &select,
        &[&[Some("2"), Some("user2"), Some("pw"), Some("After delete")]],
        WAIT,
        &services,
    )
    .await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], WAIT, &services)
        .await;
    stop(sink);
    stop(source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_insert_update_delete_as_avro() {
    insert_update_delete("avro").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_insert_update_delete_as_json() {
    insert_update_delete("json").await;
}

/// What a person types into `kafka-console-producer --property parse.key=true` on the users
/// topic: a Connect JSON-with-schema key and value, written by hand.
const MANUAL_KEY: &str = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false},"payload":{"id":1000}}"#;
const MANUAL_VALUE: &str = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"user_id"},{"type":"string","optional":true,"field":"pwd"},{"type":"string","optional":true,"field":"name"}],"optional":false,"name":"users"},"payload":{"id":1000,"user_id":"manual1","pwd":"typed","name":"Typed by hand"}}"#;

/// The source publishes Avro; a hand-written JSON record on the same topic lands as a row too,
/// and the source's records keep flowing around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_json_record_from_a_plain_producer_lands_as_a_row() {
    let p = PipelineSetup::new("pl_manual").await;
    let source = p.start_source("avro", "");
    let sink = p.start_sink("a", "", &[]);
    let services = [&source, &sink];
    let table = p.topic("users");
    let select = format!("SELECT id, user_id, pwd, name FROM `{table}` ORDER BY id");
    p.exec(&["insert into users(user_id,pwd,name) values('user1','test1111','User name')"])
        .await;
    p.wait_mirror(
        &select,
        &[&[
            Some("1"),
            Some("user1"),
            Some("test1111"),
            Some("User name"),
        ]],
        WAIT,
        &services,
    )
    .await;

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &p.stack().kafka_bootstrap)
        .create()
        .expect("plain producer");
    producer
        .send(BaseRecord::to(&table).key(MANUAL_KEY).payload(MANUAL_VALUE))
        .map_err(|(e, _)| e)
        .expect("queue the manual record");
    producer
        .flush(Duration::from_secs(10))
        .expect("manual record delivered");

    p.exec(&["insert into users(user_id,pwd,name) values('user2','pw2','After manual')"])
        .await;
    p.wait_mirror(
        &select,
        &[
            &[
                Some("1"),
                Some("user1"),
                Some("test1111"),
                Some("User name"),
            ],
            &[Some("2"), Some("user2"), Some("pw2"), Some("After manual")],
            &[
                Some("1000"),
                Some("manual1"),
                Some("typed"),
                Some("Typed by hand"),
            ],
        ],
        WAIT,
        &services,
    )
    .await;
    // The hand-written record has no created_at: the mirror column stays NULL for it.
    let created = p
        .mirror_rows(&format!(
            "SELECT created_at IS NULL FROM `{table}` WHERE id = 1000"
        ))
        .await;
    assert_eq!(created, vec![vec![Some("1".to_string())]]);
    stop(sink);
    stop(source);
}

/// The tutorial's manual step, verbatim: a JsonConverter record **without a key** typed into
/// `kafka-console-producer --topic my_topic_users`, `created_at` a Connect `Timestamp` (epoch ms).
fn tutorial_typed_record(id: i32, name: &str) -> String {
    format!(
        r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}},{{"type":"string","optional":true,"field":"user_id"}},{{"type":"string","optional":true,"field":"pwd"}},{{"type":"string","optional":true,"field":"name"}},{{"type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"created_at"}}],"optional":false,"name":"users"}},"payload":{{"id":{id},"user_id":"user4","pwd":"test4444","name":"{name}","created_at":1625097600000}}}}"#
    )
}

/// With the sink's default `pk.mode` (unset, as in the tutorial's sink JSON), the keyless typed
/// record upserts by the mirror table's primary key: it lands as row 4, a second one for id 4
/// replaces it, and the source's records keep flowing around them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_record_without_a_key_upserts_by_the_mirror_primary_key() {
    let p = PipelineSetup::new("pl_keyless").await;
    let source = p.start_source("avro", "");
    let sink = p.start_sink("a", "", &[]);
    let services = [&source, &sink];
    let table = p.topic("users");
    let select = format!("SELECT id, user_id, pwd, name, created_at FROM `{table}` ORDER BY id");
    p.exec(&["insert into users(user_id,pwd,name,created_at) values('user1','test1111','User name','2021-06-01 10:00:00')"])
        .await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], WAIT, &services)
        .await;

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &p.stack().kafka_bootstrap)
        .create()
        .expect("plain producer");
    let send = |value: String| {
        producer
            .send(BaseRecord::<(), String>::to(&table).payload(&value))
            .map_err(|(e, _)| e)
            .expect("queue the typed record");
        producer.flush(Duration::from_secs(10)).expect("typed record delivered");
    };
    send(tutorial_typed_record(4, "User four"));
    let user1 = [
        Some("1"),
        Some("user1"),
        Some("test1111"),
        Some("User name"),
        Some("2021-06-01 10:00:00"),
    ];
    p.wait_mirror(
        &select,
        &[
            &user1,
            &[Some("4"), Some("user4"), Some("test4444"), Some("User four"), Some("2021-07-01 00:00:00")],
        ],
        WAIT,
        &services,
    )
    .await;

    send(tutorial_typed_record(4, "Renamed four"));
    p.exec(&["insert into users(user_id,pwd,name,created_at) values('user2','pw2','After typed','2021-08-01 00:00:00')"])
        .await;
    p.wait_mirror(
        &select,
        &[
            &user1,
            &[Some("2"), Some("user2"), Some("pw2"), Some("After typed"), Some("2021-08-01 00:00:00")],
            &[Some("4"), Some("user4"), Some("test4444"), Some("Renamed four"), Some("2021-07-01 00:00:00")],
        ],
        WAIT,
        &services,
    )
    .await;
    stop(sink);
    stop(source);
}
