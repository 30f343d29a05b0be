//! Unit tests of `watch`: value rendering, topic selection, address precedence, and the line of
//! one record (JSON-with-schema messages decode without a registry).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use cdc_schema::{Date, Decimal, Field, FieldType, RecordSchema};
use clap::Parser;

use super::*;

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    args: WatchArgs,
}

fn args(argv: &[&str]) -> WatchArgs {
    Cli::try_parse_from(std::iter::once("watch").chain(argv.iter().copied())).unwrap().args
}

#[test]
fn values_print_as_mariadb_shows_them() {
    let date = Date { year: 2024, month: 1, day: 31 };
    let dt = DateTime { date, hour: 12, minute: 3, second: 4, micros: 500_000 };
    let cases = [
        (Value::Null, json!(null)),
        (Value::Bool(true), json!(true)),
        (Value::Int(-7), json!(-7)),
        (Value::Float(0.1), json!(0.1)),
        (Value::Double(2.5e-3), json!(0.0025)),
        (Value::Double(f64::NAN), json!("NaN")),
        (Value::Decimal(Decimal::parse("-12.50").unwrap()), json!("-12.50")),
        (Value::Decimal(Decimal::from_u64(u64::MAX)), json!("18446744073709551615")),
        (Value::Date(date), json!("2024-01-31")),
        (Value::Date(Date::ZERO), json!("0000-00-00")),
        (Value::Time(-3_723_000_000), json!("-01:02:03.000000")),
        (Value::DateTime(dt), json!("2024-01-31 12:03:04.500000")),
        (Value::Timestamp(dt.to_epoch_micros()), json!("2024-01-31T12:03:04.500000Z")),
        (Value::Timestamp(0), json!("0000-00-00 00:00:00")),
        (Value::String("한국어".into()), json!("한국어")),
        (Value::Bytes(vec![0, 255, 1]), json!("AP8B")),
    ];
    for (value, want) in cases {
        assert_eq!(value_json(&value), want, "{value:?}");
    }
}

#[test]
fn topics_by_name_and_by_pattern() {
    let existing: Vec<String> = ["my_topic_users", "my_topic_orders", "other", "__consumer_offsets", "a.b"]
        .map(String::from)
        .to_vec();
    let pick = |a: &[&str]| select(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &existing, "k:1");
    assert_eq!(pick(&["my_topic_.*"]).unwrap(), ["my_topic_orders", "my_topic_users"]);
    assert_eq!(pick(&["other", "^my_topic_u.*$"]).unwrap(), ["my_topic_users", "other"]);
    assert_eq!(pick(&[".*"]).unwrap().len(), 4, "internal topics only by name");
    assert_eq!(pick(&["__consumer_offsets"]).unwrap(), ["__consumer_offsets"]);
    assert_eq!(pick(&["a.b"]).unwrap(), ["a.b"], "a dot alone is a name");
    let e = pick(&["my_topic_user"]).unwrap_err().to_string();
    assert!(e.contains("topic `my_topic_user` does not exist on k:1"), "{e}");
    let e = pick(&["nothing_.*"]).unwrap_err().to_string();
    assert!(e.contains("matches no topic"), "{e}");
    let e = pick(&["bad(["]).unwrap_err().to_string();
    assert!(e.contains("not a valid regex"), "{e}");
}

#[test]
fn flags_win_over_the_config_which_wins_over_the_stack_environment() {
    let env = |n: &str| match n {
        "CDC_KAFKA_BOOTSTRAP" => Some("env:1".to_string()),
        "CDC_REGISTRY_URL" => Some("http://env".to_string()),
        _ => None,
    };
    let config = Endpoints {
        kafka: [("bootstrap.servers".to_string(), "cfg:1".to_string()), ("security.protocol".to_string(), "SSL".to_string())].into(),
        registry_url: Some("http://cfg".into()),
        registry: cdc_common::RegistryKeys { ca_pem: None, user_info: Some(("u".into(), cdc_common::Secret::new("p"))) },
    };
    let t = Target::resolve(config.clone(), &args(&["t"]), env);
    assert_eq!(t.registry_keys, config.registry, "the registry's credentials reach the decoder");
    assert_eq!((t.bootstrap(), t.registry_url.as_deref()), ("cfg:1", Some("http://cfg")));
    assert_eq!(t.kafka["security.protocol"], "SSL", "other kafka.* keys reach the consumer");
    let t = Target::resolve(config, &args(&["t", "--bootstrap-servers", "f:1", "--registry-url", "http://f"]), env);
    assert_eq!((t.bootstrap(), t.registry_url.as_deref()), ("f:1", Some("http://f")));
    let t = Target::resolve(Endpoints::default(), &args(&["t"]), env);
    assert_eq!((t.bootstrap(), t.registry_url.as_deref()), ("env:1", Some("http://env")));
    let t = Target::resolve(Endpoints::default(), &args(&["t"]), |_| None);
    assert_eq!((t.bootstrap(), t.registry_url.as_deref()), (DEFAULT_BOOTSTRAP, None));
}

#[test]
fn modes_parse() {
    let a = args(&["a", "b.*", "--from", "end", "--follow", "--max", "3"]);
    assert_eq!((a.topics.len(), a.from, a.follow, a.max), (2, StartAt::End, true, Some(3)));
    let a = args(&["a"]);
    assert_eq!((a.from, a.follow, a.max), (StartAt::Beginning, false, None));
    assert!(Cli::try_parse_from(["watch"]).is_err(), "a topic is required");
}

fn json_message(fields: &[(&str, FieldType)], values: Vec<Value>) -> Vec<u8> {
    let schema = RecordSchema {
        name: Some("t.Value".into()),
        fields: fields.iter().map(|(n, t)| Field::new(n, t.clone(), true)).collect(),
    };
    cdc_schema::encode_json(&Record { schema: Arc::new(schema), values }).unwrap()
}

async fn line(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[(&str, &str)]) -> Json {
    let headers: Vec<(String, Option<String>)> = headers.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect();
    let raw = Raw { topic: "t", partition: 2, offset: 7, timestamp: Some(1000), key, value, headers: &headers };
    render(&Decoder::new(None), &raw).await.unwrap()
}

#[tokio::test]
async fn a_record_a_tombstone_a_truncate_and_garbage() {
    let key = json_message(&[("id", FieldType::Int32)], vec![Value::Int(5)]);
    let value = json_message(
        &[("id", FieldType::Int32), ("price", FieldType::Decimal { precision: Some(5), scale: 2 })],
        vec![Value::Int(5), Value::Decimal(Decimal::parse("3.10").unwrap())],
    );
    let got = line(Some(&key), Some(&value), &[("cdc.op", "c")]).await;
    let want = json!({"topic": "t", "partition": 2, "offset": 7, "timestamp": 1000, "key": {"id": 5},
        "value": {"id": 5, "price": "3.10"}, "headers": {"cdc.op": "c"}});
    assert_eq!(got, want);
    assert_eq!(got.to_string(), want.to_string(), "fields in this order");

    let got = line(Some(&key), None, &[("cdc.op", "d")]).await;
    assert_eq!((got["value"].clone(), got["tombstone"].clone(), got.get("truncate")), (json!(null), json!(true), None));

    let got = line(None, None, &[("cdc.op", "t")]).await;
    assert_eq!((got["key"].clone(), got["truncate"].clone(), got.get("tombstone")), (json!(null), json!(true), None));

    let got = line(Some(&key), Some(b"\x07garbage"), &[]).await;
    let error = got["error"].as_str().unwrap();
    assert!(error.contains("cannot decode value of t[2]@7") && error.contains("first byte is 0x07"), "{error}");
    assert_eq!(got["raw"], json!({"key": BASE64.encode(&key), "value": "B2dhcmJhZ2U="}));
    assert!(got.get("value").is_none());

    let avro = [0u8, 0, 0, 0, 9, 2];
    let got = line(None, Some(&avro), &[]).await;
    assert!(got["error"].as_str().unwrap().contains("no schema registry is configured"), "{got}");
}
